"""The split matrix of an exact all-pairs run, and what every block of it needs.

The cost of exact all-pairs is the sum over terms of df^2, and almost all of
it comes from the few terms with the highest document frequency. So the
columns are split: frequent terms go into a small dense matrix multiplied with
BLAS, rare terms stay sparse; because the two column sets are disjoint, the
two products add up to the exact cosine. A block holds the float32 scores of
some rows against a range of columns (rows of the corpus too: X X^T); its
candidates are picked in float32, and a row is finished by re-scoring it in
float64 where float32 rounding could change its order or move a score by more
than about 1e-7, so the lists and scores are those of float64 brute force.

Shared by the threaded all-pairs of one machine (:mod:`recommender.allpairs`)
and the tasks of a Dask cluster (:mod:`recommender.cluster`): both finish the
same candidates the same way, so both give the same lists.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from .kernels import add_sparse_into, kth_lower_bound

# Picking candidates in float32 can swap two neighbours whose scores differ by
# less than its rounding; a few spare candidates per row are re-scored in
# float64 so that the final top k is exact.
_SPARE = 8
# At most this many columns go dense (N x _MAX_DENSE float32 lives in memory).
_MAX_DENSE = 768
# Relative cost of one dense multiply-add against one scattered sparse one: a
# column is worth moving to the dense part when df/N exceeds sqrt(this ratio).
# Re-measured with the symmetric blocks on 20 Newsgroups: total time is flat
# (within noise) from 0.0015 to 0.02.
_DENSE_COST_RATIO = 0.0025
# A block's rows (columns) are cut at a bound taken from this many group maxima:
# more groups give a tighter bound and fewer candidates to sort.
ROW_GROUPS = 512
COLUMN_GROUPS = 128
# Rare-term products are gathered this many at a time (a few MB: stays in cache).
_PIECE = 1 << 17
# A row is re-scored in float64 where its float32 scores could be off by more
# than about 1e-7, or could be in the wrong order. A float32 sum of n products
# totalling s is typically off by about sqrt(n) * s * 2^-24; rows where
# score * sqrt(terms) reaches _ROUNDING_SCALE are re-scored (measured: every
# other score is within 2.4e-7 of float64 on BBC News and 20 Newsgroups,
# against up to 4.2e-6 above the line). The remaining scores are then in the
# right order wherever they are more than _AMBIGUOUS apart (20 times that
# error); closer ones (and ties, and scores at the minimum) are re-scored.
_ROUNDING_SCALE = 6.0
_AMBIGUOUS = 5e-6
# Rows re-scored together (their dense scratch of vocabulary size stays in cache).
_RESCORE_ROWS = 16

# Candidates of some rows: (row, candidate, float32 score), three equal-length arrays.
Candidates = tuple[np.ndarray, np.ndarray, np.ndarray]


def dense_columns(matrix: sp.csr_matrix) -> np.ndarray:
    """Columns (most frequent first) whose products are cheaper done densely."""
    n_rows = matrix.shape[0]
    df = np.bincount(matrix.indices, minlength=matrix.shape[1])
    threshold = np.sqrt(_DENSE_COST_RATIO) * n_rows
    order = np.argsort(-df, kind="stable")
    chosen = order[df[order] > threshold][:_MAX_DENSE]
    return np.sort(chosen)


def nonzero(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.nonzero of a 2-D mask, through the flat positions: about 10x faster."""
    return np.divmod(np.flatnonzero(mask), mask.shape[1])


def best_per_row(parts: Sequence[Candidates], start: int, stop: int, width: int) -> tuple[np.ndarray, ...]:
    """The best ``width`` (row, candidate, value) per row of start:stop, sorted, with their ranks."""
    rows, cands, approx = (np.concatenate(p) for p in zip(*parts, strict=True))
    # One float64 key sorts by row, then by value descending (values lie in [-1, 2)).
    order = np.argsort((rows - start) * 4.0 - np.clip(approx, -1.0, 2.0))
    rows, cands, approx = rows[order], cands[order], approx[order]
    first = np.searchsorted(rows, np.arange(start, stop))
    rank = np.arange(rows.size) - first[rows - start]
    keep = rank < width
    return rows[keep], cands[keep], approx[keep], rank[keep]


class SplitMatrix:
    """An L2-normalised float32 matrix split into dense and sparse columns, with its postings.

    Read-only once built: threads share one, and every cluster worker builds
    its own from the same matrix.
    """

    def __init__(self, matrix: sp.csr_matrix, k: int, tie_key: np.ndarray, exclude_self: bool, floor: float):
        n_rows = matrix.shape[0]
        self.k, self.tie_key, self.exclude_self, self.floor = k, tie_key, exclude_self, floor
        self.width = min(k + _SPARE, n_rows - 1 if exclude_self else n_rows)
        is_dense = np.zeros(matrix.shape[1], dtype=bool)
        is_dense[dense_columns(matrix)] = True
        self.dense = np.ascontiguousarray(matrix[:, is_dense].toarray())
        self.sparse = matrix[:, ~is_dense].tocsr()
        postings = self.sparse.T.tocsr()
        postings.sort_indices()
        self.postings = postings
        # Each posting keyed by (term, document) in one sorted int64, to find
        # where every term's documents reach a column range with one search.
        term_of = np.repeat(np.arange(postings.shape[0], dtype=np.int64), np.diff(postings.indptr))
        self.keys = term_of * n_rows + postings.indices
        self.matrix = matrix
        self.row_terms = np.diff(matrix.indptr)

    @property
    def n_rows(self) -> int:
        return int(self.matrix.shape[0])

    def term_starts(self, lo: int) -> np.ndarray:
        """Where each term's posting list reaches document ``lo`` (one search over all terms)."""
        term_base = np.arange(self.postings.shape[0], dtype=np.int64) * self.n_rows
        return np.searchsorted(self.keys, term_base + lo)

    def scores(
        self,
        buffer: np.ndarray,
        start: int,
        stop: int,
        lo: int,
        hi: int,
        starts: tuple[np.ndarray, np.ndarray | None] | None = None,
    ) -> np.ndarray:
        """Float32 scores of rows start:stop against rows lo:hi, in ``buffer`` (self pairs -inf).

        ``starts`` are ``term_starts`` of lo and of hi (None when hi is the
        last row), for callers that score many blocks against the same columns.
        """
        block = buffer[: (stop - start) * (hi - lo)].reshape(stop - start, hi - lo)
        np.matmul(self.dense[start:stop], self.dense[lo:hi].T, out=block)
        if starts is None:
            starts = (self.term_starts(lo), self.term_starts(hi) if hi < self.n_rows else None)
        self._add_rare(block, start, stop, lo, *starts)
        if self.exclude_self:
            both = np.arange(max(start, lo), min(stop, hi))
            block[both - start, both - lo] = -np.inf
        return block

    def _add_rare(
        self, block: np.ndarray, start: int, stop: int, lo: int, lo_starts: np.ndarray, hi_starts: np.ndarray | None
    ) -> None:
        """block += rare-term part of rows start:stop times rows lo:hi (given as their ``term_starts``).

        Writes each product term straight into the block (scipy's csr_todense
        adds duplicates), with no symbolic pass and no product matrix: the
        (document, weight) pairs of row i are the posting lists of its terms,
        cut to documents lo:hi, gathered in pieces small enough to stay in
        cache. About twice as fast as scipy's sparse product plus the add.
        """
        postings, sparse = self.postings, self.sparse
        at = sparse.indptr[start : stop + 1]
        terms, weights = sparse.indices[at[0] : at[-1]], sparse.data[at[0] : at[-1]]
        begins = lo_starts[terms]
        lengths = (postings.indptr[terms + 1] if hi_starts is None else hi_starts[terms]) - begins
        ends = np.concatenate(([0], np.cumsum(lengths)))
        row_ends = ends[at - at[0]]
        row = 0
        while row < stop - start:
            # Rows row:last hold at most _PIECE products (at least one row).
            last = int(np.searchsorted(row_ends, row_ends[row] + _PIECE, side="right")) - 1
            last = min(max(last, row + 1), stop - start)
            first_at, last_at = at[row] - at[0], at[last] - at[0]
            keep = lengths[first_at:last_at] > 0
            size = lengths[first_at:last_at][keep]
            begin, weight = begins[first_at:last_at][keep], weights[first_at:last_at][keep]
            if size.size:
                # Positions in the postings: runs begin..begin+size, built by
                # a cumulative sum of ones with a jump at each run start.
                pos = np.ones(int(size.sum()), dtype=postings.indices.dtype)
                pos[0] = begin[0]
                pos[np.cumsum(size[:-1])] = begin[1:] - (begin[:-1] + size[:-1] - 1)
                np.cumsum(pos, out=pos)
                columns = postings.indices.take(pos)
                columns -= lo
                values = postings.data.take(pos)
                values *= np.repeat(weight, size)
                indptr = (row_ends[row : last + 1] - row_ends[row]).astype(columns.dtype)
                add_sparse_into(block[row:last], indptr, columns, values)
            row = last

    def row_candidates(self, block: np.ndarray, start: int, lo: int) -> Candidates:
        """Candidates for a block's rows (start onwards) among its columns (lo onwards)."""
        r, c = nonzero(block >= kth_lower_bound(block, self.width, 1, ROW_GROUPS)[:, None])
        return r + start, c + lo, block[r, c]

    def rescore(self, rows: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Exact float64 cosine of the given rows with their candidates (n x width).

        A few rows at a time are spread into a dense scratch array; each
        candidate's terms then look their partner's weights up there. Products
        of float32 weights are exact in float64, and are summed in float64.
        """
        n, width = candidates.shape
        matrix, n_cols = self.matrix, self.matrix.shape[1]
        scores = np.empty((n, width))
        scratch = np.zeros((_RESCORE_ROWS, n_cols), dtype=np.float32)
        flat_scratch = scratch.ravel()
        for lo in range(0, n, _RESCORE_ROWS):
            hi = min(lo + _RESCORE_ROWS, n)
            own = matrix[rows[lo:hi]]
            own_rows = np.repeat(np.arange(hi - lo), np.diff(own.indptr))
            scratch[own_rows, own.indices] = own.data
            theirs = matrix[candidates[lo:hi].ravel()]
            pair = np.repeat(np.arange(theirs.shape[0]), np.diff(theirs.indptr))
            products = flat_scratch[(pair // width) * n_cols + theirs.indices].astype(np.float64)
            products *= theirs.data
            scores[lo:hi] = np.bincount(pair, products, minlength=theirs.shape[0]).reshape(hi - lo, width)
            scratch[own_rows, own.indices] = 0.0
        return scores

    def finish(self, start: int, stop: int, parts: Sequence[Candidates]) -> tuple[np.ndarray, np.ndarray]:
        """Exact top k of rows start:stop from all their candidates: (int32 indices, float64 scores).

        The float32 scores decide wherever they can: a row is re-scored in
        float64 only when two of its first k + 1 candidates, or one of them
        and the minimum similarity, lie closer than ``_AMBIGUOUS``, or when
        one of its scores sums enough products to drift (``_ROUNDING_SCALE``).
        Its order and ties are then exact too.
        """
        rows, cands, approx, rank = best_per_row(parts, start, stop, self.width)
        n, width = stop - start, self.width
        own = np.arange(start, stop)
        candidates = np.repeat(own[:, None], width, axis=1)
        scores = np.full((n, width), -np.inf)
        candidates[rows - start, rank] = cands
        scores[rows - start, rank] = approx
        head = scores[:, : min(self.k + 1, width)]
        with np.errstate(invalid="ignore"):
            close = np.any(head[:, :-1] - head[:, 1:] < _AMBIGUOUS, axis=1)
        close |= np.any(np.abs(head - self.floor) < _AMBIGUOUS, axis=1)
        # A pair sums at most as many products as the shorter of its two rows has terms.
        terms = np.minimum(self.row_terms[own, None], self.row_terms[candidates[:, : head.shape[1]]])
        with np.errstate(invalid="ignore"):
            close |= np.any(head * np.sqrt(terms) >= _ROUNDING_SCALE, axis=1)
        redo = np.flatnonzero(close)
        if redo.size:
            exact = self.rescore(own[redo], candidates[redo])
            exact[np.isinf(scores[redo])] = -np.inf
            scores[redo] = exact
        if self.exclude_self:
            scores[candidates == own[:, None]] = -np.inf
        order = np.lexsort((self.tie_key[candidates], -scores), axis=1)[:, : self.k]
        picked = np.take_along_axis(candidates, order, axis=1)
        return picked.astype(np.int32), np.take_along_axis(scores, order, axis=1)
