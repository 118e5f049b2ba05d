"""Arrays that grow by a row at a time: what the live index keeps for articles added after training.

* :class:`Growable` is an array (1-D or 2-D) with amortised appends: its
  ``view`` is a plain ndarray of the rows so far, valid until the next append.
* :class:`RowStack` reads rows of a fixed (often memory-mapped) base array and
  of a Growable of later rows as one array, without copying the base.
* :class:`LivePostings` scores a query against the live rows: a term-major
  index of the settled rows (rebuilt every few hundred appends) plus a scan of
  the newest ones, so a query costs about what its own terms touch.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .search import SearchIndex

# Rows scanned one by one before they are folded into the term-major index.
_PENDING_ROWS = 256


class Growable:
    """An array that takes one row at a time (capacity doubles as needed)."""

    def __init__(self, initial: np.ndarray, capacity: int = 16) -> None:
        initial = np.asarray(initial)
        room = initial.shape[0] + max(capacity, initial.shape[0] // 4)
        self._buffer = np.empty((room, *initial.shape[1:]), dtype=initial.dtype)
        self._buffer[: initial.shape[0]] = initial
        self.size = int(initial.shape[0])

    @property
    def view(self) -> np.ndarray:
        return self._buffer[: self.size]

    def _reserve(self, size: int) -> None:
        if size > self._buffer.shape[0]:
            room = max(size, self._buffer.shape[0] + self._buffer.shape[0] // 2 + 16)
            bigger = np.empty((room, *self._buffer.shape[1:]), self._buffer.dtype)
            bigger[: self.size] = self._buffer[: self.size]
            self._buffer = bigger

    def append(self, value: object) -> None:
        self._reserve(self.size + 1)
        self._buffer[self.size] = value
        self.size += 1

    def extend(self, values: np.ndarray) -> None:
        self._reserve(self.size + len(values))
        self._buffer[self.size : self.size + len(values)] = values
        self.size += len(values)


class RowStack:
    """Rows ``0..N-1`` from ``base`` and ``N..`` from ``extra``, indexed like one 2-D array."""

    def __init__(self, base: np.ndarray, extra: Growable) -> None:
        self.base = base
        self.extra = extra
        self.n_base = int(base.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_base + self.extra.size, int(self.base.shape[1]))

    def __getitem__(self, index: int | np.ndarray) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            i = int(index)
            return np.asarray(self.base[i]) if i < self.n_base else self.extra.view[i - self.n_base]
        index = np.asarray(index)
        late = index >= self.n_base
        if not late.any():
            return np.asarray(self.base[index])
        out = np.empty((index.size, self.base.shape[1]), dtype=self.base.dtype)
        out[~late] = self.base[index[~late]]
        out[late] = self.extra.view[index[late] - self.n_base]
        return out


class LivePostings:
    """Lexical scores of a query against the rows appended so far (sparse unit vectors).

    Every row's entries sit in flat arrays; the rows before ``settled`` are also
    in a term-major index (read per query term, like the bundle's postings),
    the newer ones are scanned in one vectorised pass.
    """

    def __init__(self, n_terms: int) -> None:
        self.n_terms = n_terms
        self._columns = Growable(np.empty(0, dtype=np.int32), 1024)
        self._weights = Growable(np.empty(0, dtype=np.float32), 1024)
        self._row_of = Growable(np.empty(0, dtype=np.int64), 1024)  # the row of each entry
        self._offsets = Growable(np.zeros(1, dtype=np.int64), 64)
        self._settled = 0  # rows in the term-major index
        self._index: SearchIndex | None = None

    def __len__(self) -> int:
        return self._offsets.size - 1

    def append(self, columns: np.ndarray, weights: np.ndarray) -> None:
        self._columns.extend(columns)
        self._weights.extend(weights)
        self._row_of.extend(np.full(columns.size, len(self), dtype=np.int64))
        self._offsets.append(self._columns.size)
        if len(self) - self._settled >= _PENDING_ROWS:
            self._settle()

    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every row's columns and weights, end to end, and the row offsets (a checkpoint saves them)."""
        return self._columns.view, self._weights.view, self._offsets.view

    def load(self, columns: np.ndarray, weights: np.ndarray, offsets: np.ndarray) -> None:
        """Take the rows of :meth:`flat` (into an empty instance)."""
        if len(self):
            raise ValueError("live postings can only be loaded when empty")
        self._columns = Growable(columns.astype(np.int32), 1024)
        self._weights = Growable(weights.astype(np.float32), 1024)
        lengths = np.diff(offsets)
        self._row_of = Growable(np.repeat(np.arange(lengths.size, dtype=np.int64), lengths), 1024)
        self._offsets = Growable(offsets.astype(np.int64), 64)
        self._settled = 0
        self._index = None
        # Settled where appending the same rows one by one would have settled them:
        # the two ways of scoring may round differently in the last bit.
        settled = len(self) - len(self) % _PENDING_ROWS
        if settled:
            self._settle(settled)

    def row(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        start, stop = self._offsets.view[index], self._offsets.view[index + 1]
        return self._columns.view[start:stop], self._weights.view[start:stop]

    def _settle(self, n: int | None = None) -> None:
        """Fold the first ``n`` rows (default: every row so far) into the term-major index."""
        n = len(self) if n is None else n
        end = int(self._offsets.view[n])
        matrix = sp.csr_matrix(
            (self._weights.view[:end], self._columns.view[:end], self._offsets.view[: n + 1]), shape=(n, self.n_terms)
        )
        self._index = SearchIndex.from_matrix(matrix, np.arange(n))
        self._settled = n

    def scores(self, columns: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Cosine of the query with every live row (float64, one per row)."""
        n = len(self)
        out = np.zeros(n)
        if n == 0 or columns.size == 0:
            return out
        if self._index is not None:
            out[: self._settled] = self._index.scores(columns, weights)
        if n > self._settled:
            query = np.zeros(self.n_terms)
            query[columns] = weights
            begin = int(self._offsets.view[self._settled])
            products = query[self._columns.view[begin:]] * self._weights.view[begin:]
            rows = self._row_of.view[begin:] - self._settled
            out[self._settled :] = np.bincount(rows, weights=products, minlength=n - self._settled)
        return out
