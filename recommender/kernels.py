"""Dense-array kernels shared by the all-pairs precomputation and the free-text search."""

from __future__ import annotations

import numpy as np

try:
    from scipy.sparse._sparsetools import csr_todense as _csr_todense
except ImportError:  # pragma: no cover
    _csr_todense = None


def kth_lower_bound(values: np.ndarray, width: int, axis: int, groups: int) -> np.ndarray:
    """A lower bound of the ``width``-th largest value along ``axis`` (-inf if unknown).

    Splits the axis into about ``groups`` interleaved groups and takes their
    maxima: at least ``width`` values reach the ``width``-th largest maximum,
    so it bounds the true one from below, at the cost of one streaming pass
    (elementwise maxima of contiguous slabs) instead of a selection.
    """
    long = values.shape[axis]
    groups = min(groups, long)
    if groups < width:
        return np.full(values.shape[1 - axis], -np.inf, dtype=values.dtype)
    size = long // groups
    if axis == 0:
        maxima = values[: groups * size].reshape(size, groups, -1).max(axis=0).T
    else:
        maxima = values[:, : groups * size].reshape(-1, size, groups).max(axis=1)
    return np.partition(maxima, groups - width, axis=1)[:, groups - width]


def add_sparse_into(block: np.ndarray, indptr: np.ndarray, columns: np.ndarray, values: np.ndarray) -> None:
    """block += the CSR rows (indptr, columns, values); repeated columns add up."""
    if _csr_todense is not None:
        # scipy's own kernel adds into the given array (toarray(out=) zeroes it first).
        _csr_todense(block.shape[0], block.shape[1], indptr, columns, values, block)
    else:  # pragma: no cover - only if scipy moves its private kernel
        rows = np.repeat(np.arange(block.shape[0]), np.diff(indptr))
        np.add.at(block, (rows, columns), values)
