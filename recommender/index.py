"""Exact cosine nearest neighbours over L2-normalised sparse rows.

Two paths:

* ``all_pairs_topk`` precomputes every article's top k at training time. The
  cost of exact all-pairs is the sum over terms of df^2, and almost all of it
  comes from the few terms with the highest document frequency. So the columns
  are split: frequent terms go into a small dense matrix multiplied with BLAS,
  rare terms stay sparse; because the two column sets are disjoint, the two
  products add up to the exact cosine. Row chunks bound the memory and run on
  all cores. Candidates are picked in float32 and re-scored in float64, so the
  scores are exact to float64 rounding.
* ``SearchIndex.query`` answers free text on demand: it reads only the posting
  lists of the query's terms from a pre-transposed (column-major) copy of the
  matrix, like an inverted index.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

try:
    from scipy.sparse._sparsetools import csr_todense as _csr_todense
except ImportError:  # pragma: no cover
    _csr_todense = None

# Picking candidates in float32 can swap two neighbours whose scores differ by
# less than its rounding; a few spare candidates per row are re-scored in
# float64 so that the final top k is exact.
_SPARE = 8
# At most this many columns go dense (N x _MAX_DENSE float32 lives in memory).
_MAX_DENSE = 768
# Relative cost of one dense multiply-add against one scattered sparse one,
# measured on the project's machine (see benchmarks/): a column is worth
# moving to the dense part when df/N exceeds sqrt(this ratio).
_DENSE_COST_RATIO = 0.0025


@dataclass(frozen=True)
class Neighbours:
    """Top-k lists of a whole corpus: row i holds article i's neighbours.

    ``indices`` is int32 (N, k), padded with -1 where fewer than k articles
    reach the minimum similarity; ``scores`` is float32 (N, k), 0 in padding.
    """

    indices: np.ndarray
    scores: np.ndarray


def dense_columns(matrix: sp.csr_matrix) -> np.ndarray:
    """Columns (most frequent first) whose products are cheaper done densely."""
    n_rows = matrix.shape[0]
    df = np.bincount(matrix.indices, minlength=matrix.shape[1])
    threshold = np.sqrt(_DENSE_COST_RATIO) * n_rows
    order = np.argsort(-df, kind="stable")
    chosen = order[df[order] > threshold][:_MAX_DENSE]
    return np.sort(chosen)


def all_pairs_topk(
    matrix: sp.csr_matrix,
    k: int,
    *,
    tie_key: np.ndarray | None = None,
    min_similarity: float = 0.0,
    exclude_self: bool = True,
    n_jobs: int | None = None,
    chunk_rows: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Neighbours:
    """Exact top-k cosine neighbours of every row of an L2-normalised matrix.

    Ties are broken by ``tie_key`` (smaller first; default the row number).
    Scores below ``min_similarity`` (or not above zero) are left out.
    ``progress`` is called with the number of rows finished by each chunk.
    """
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    n_rows = matrix.shape[0]
    if tie_key is None:
        tie_key = np.arange(n_rows)
    k_eff = min(k, max(n_rows - 1, 0))
    indices = np.full((n_rows, k), -1, dtype=np.int32)
    scores = np.zeros((n_rows, k), dtype=np.float32)
    if k_eff == 0:
        return Neighbours(indices, scores)

    dense_cols = dense_columns(matrix)
    is_dense = np.zeros(matrix.shape[1], dtype=bool)
    is_dense[dense_cols] = True
    dense = np.ascontiguousarray(matrix[:, dense_cols].toarray())
    sparse_part = matrix[:, np.flatnonzero(~is_dense)].tocsr()
    sparse_t = sparse_part.T.tocsr()
    exact = sp.csr_matrix(matrix, dtype=np.float64)

    workers = _n_workers(n_jobs)
    if chunk_rows is None:
        # A chunk's dense block is chunk_rows x N float32: keep it near 64 MB.
        chunk_rows = int(max(32, min(2048, (16 << 20) // max(n_rows, 1))))
    bounds = [(s, min(s + chunk_rows, n_rows)) for s in range(0, n_rows, chunk_rows)]
    parts = _Parts(dense, sparse_part, sparse_t, exact, k_eff, tie_key, exclude_self)
    # scipy's sparse product holds the GIL, so chunks run in worker processes;
    # joblib hands them the arrays as shared memory maps. One BLAS thread per
    # worker avoids oversubscription.
    if workers == 1 or len(bounds) == 1:
        with threadpool_limits(limits=workers, user_api="blas"):
            results = (parts(a, b) for a, b in bounds)
            _collect(results, bounds, indices, scores, k_eff, min_similarity, progress)
    else:
        with Parallel(n_jobs=workers, return_as="generator", max_nbytes="1M") as pool:
            results = pool(delayed(_run_chunk)(parts, a, b) for a, b in bounds)
            _collect(results, bounds, indices, scores, k_eff, min_similarity, progress)
    return Neighbours(indices, scores)


def _collect(results, bounds, indices, scores, k, min_similarity, progress) -> None:  # type: ignore[no-untyped-def]
    floor = max(min_similarity, 0.0)
    for (start, stop), (rows, vals) in zip(bounds, results, strict=True):
        keep = vals > floor
        indices[start:stop, :k] = np.where(keep, rows, -1)
        scores[start:stop, :k] = np.where(keep, vals, 0.0)
        if progress is not None:
            progress(stop - start)


def _run_chunk(parts: _Parts, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    with threadpool_limits(limits=1, user_api="blas"):
        return parts(start, stop)


def _n_workers(n_jobs: int | None) -> int:
    cores = os.cpu_count() or 1
    if n_jobs is None or n_jobs < 1:
        return cores
    return min(n_jobs, cores)


def _add_sparse_into(block: np.ndarray, part: sp.csr_matrix) -> None:
    """block += part, for a CSR product of the same shape."""
    if _csr_todense is not None:
        # scipy's own kernel adds into the given array (toarray(out=) zeroes it first).
        _csr_todense(part.shape[0], part.shape[1], part.indptr, part.indices, part.data, block)
    else:  # pragma: no cover - only if scipy moves its private kernel
        rows = np.repeat(np.arange(part.shape[0]), np.diff(part.indptr))
        block.ravel()[rows * block.shape[1] + part.indices] += part.data


def top_columns(block: np.ndarray, width: int, group: int = 32) -> np.ndarray:
    """Column indices of the ``width`` largest values of each row (any order).

    Scans the block once for the maxima of groups of ``group`` columns; only
    the best ``width`` groups of a row can hold its ``width`` best values, so
    the exact selection then runs on width x group values instead of the row.
    """
    n_rows, n_cols = block.shape
    n_groups = -(-n_cols // group)
    if n_groups <= width:
        return np.argpartition(-block, width - 1, axis=1)[:, :width]
    pad = n_groups * group - n_cols
    padded = np.pad(block, ((0, 0), (0, pad)), constant_values=-np.inf) if pad else block
    maxima = padded.reshape(n_rows, n_groups, group).max(axis=2)
    best_groups = np.argpartition(-maxima, width - 1, axis=1)[:, :width]
    columns = (best_groups[:, :, None] * group + np.arange(group)).reshape(n_rows, -1)
    values = np.take_along_axis(padded, columns, axis=1)
    chosen = np.argpartition(-values, width - 1, axis=1)[:, :width]
    return np.take_along_axis(columns, chosen, axis=1)


@dataclass(frozen=True)
class _Parts:
    """Everything a worker needs to compute the top k of a chunk of rows."""

    dense: np.ndarray
    sparse_part: sp.csr_matrix
    sparse_t: sp.csr_matrix
    exact: sp.csr_matrix
    k: int
    tie_key: np.ndarray
    exclude_self: bool

    def __call__(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        n_rows = self.dense.shape[0]
        block = self.dense[start:stop] @ self.dense.T
        part = sp.csr_matrix(self.sparse_part[start:stop] @ self.sparse_t)
        if part.nnz:
            _add_sparse_into(block, part)
        local = np.arange(stop - start)
        if self.exclude_self:
            block[local, start + local] = -np.inf
        width = min(self.k + _SPARE, n_rows - 1 if self.exclude_self else n_rows)
        candidates = top_columns(block, width)
        # Exact float64 scores for the candidates: row-wise products of sparse rows.
        flat_rows = np.repeat(np.arange(start, stop), width)
        exact_scores = np.asarray(self.exact[flat_rows].multiply(self.exact[candidates.ravel()]).sum(axis=1)).reshape(
            stop - start, width
        )
        if self.exclude_self:
            exact_scores[candidates == (start + local)[:, None]] = -np.inf
        order = np.lexsort((self.tie_key[candidates], -exact_scores), axis=1)[:, : self.k]
        picked = np.take_along_axis(candidates, order, axis=1)
        return picked.astype(np.int32), np.take_along_axis(exact_scores, order, axis=1)


class SearchIndex:
    """On-demand exact top-k for a query vector over a column-major matrix.

    ``postings`` is the corpus matrix transposed to CSR (one row per term,
    holding the documents that use it and their weights), so a query touches
    only the posting lists of its own terms.
    """

    def __init__(self, postings: sp.csr_matrix, tie_key: np.ndarray) -> None:
        self.postings = postings
        self.tie_key = tie_key
        self.n_documents = postings.shape[1]

    @classmethod
    def from_matrix(cls, matrix: sp.csr_matrix, tie_key: np.ndarray) -> SearchIndex:
        """Build from the row-major corpus matrix."""
        postings = sp.csr_matrix(matrix.T, dtype=np.float32)
        postings.sort_indices()
        return cls(postings, tie_key)

    def scores(self, columns: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Cosine of the query with every document (dense float64, length N)."""
        indptr = self.postings.indptr
        starts, stops = indptr[columns], indptr[columns + 1]
        lengths = stops - starts
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(self.n_documents, dtype=np.float64)
        # Gather every touched posting in one vectorised step.
        offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        positions = np.arange(total) + offsets
        docs = self.postings.indices[positions]
        contrib = self.postings.data[positions] * np.repeat(weights.astype(np.float64), lengths)
        return np.bincount(docs, contrib, minlength=self.n_documents)

    def query(
        self,
        columns: np.ndarray,
        weights: np.ndarray,
        k: int,
        *,
        min_similarity: float = 0.0,
        exclude: np.ndarray | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top k (document indices, scores) for one sparse query vector.

        ``exclude`` lists document indices never to return; ``allowed`` (a
        boolean mask over documents) restricts the result to a subset.
        Only documents scoring above ``min_similarity`` (and above 0) count.
        """
        if columns.size == 0 or k <= 0:
            return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float64)
        scores = self.scores(columns, weights)
        floor = max(min_similarity, 0.0)
        if exclude is not None and exclude.size:
            scores[exclude] = -np.inf
        if allowed is not None:
            scores[~allowed] = -np.inf
        candidates = np.flatnonzero(scores > floor)
        if candidates.size == 0:
            return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float64)
        if candidates.size > k:
            cand_scores = scores[candidates]
            # Keep everything tied with the k-th score so that the tie key decides.
            kth = np.partition(cand_scores, cand_scores.size - k)[cand_scores.size - k]
            candidates = candidates[cand_scores >= kth]
        order = np.lexsort((self.tie_key[candidates], -scores[candidates]))[:k]
        picked = candidates[order]
        return picked.astype(np.int32), scores[picked]
