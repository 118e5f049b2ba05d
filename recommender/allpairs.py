"""Exact cosine nearest neighbours of every article, precomputed at training time.

* ``all_pairs_topk`` precomputes every article's top k. The
  cost of exact all-pairs is the sum over terms of df^2, and almost all of it
  comes from the few terms with the highest document frequency. So the columns
  are split: frequent terms go into a small dense matrix multiplied with BLAS,
  rare terms stay sparse; because the two column sets are disjoint, the two
  products add up to the exact cosine. X X^T is symmetric, so a chunk of rows
  is multiplied only with itself and the later rows: its block is read along
  rows (candidates for the chunk) and along columns (candidates that later
  rows collect before their own turn). Candidates are picked in float32; a
  row is re-scored in float64 where float32 rounding could change its order
  or move a score by more than about 1e-7, so the lists and scores are those
  of float64 brute force (tested to 1e-6 on 20 Newsgroups).

Free text is answered on demand by :mod:`recommender.search`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

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
_ROW_GROUPS = 512
_COLUMN_GROUPS = 128
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
# A chunk's pile of candidates from earlier blocks is cut back to the best
# `width` per row when it holds more than this many times that.
_COMPACT = 4


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
    tie_key = np.arange(n_rows) if tie_key is None else np.asarray(tie_key)
    k_eff = min(k, max(n_rows - 1, 0))
    indices = np.full((n_rows, k), -1, dtype=np.int32)
    scores = np.zeros((n_rows, k), dtype=np.float32)
    if k_eff == 0:
        return Neighbours(indices, scores)
    if chunk_rows is None:
        # A chunk's block is chunk_rows x N float32: about 64 MB (128 MB at 126k
        # rows, where the 256-row floor applies), one per thread.
        chunk_rows = int(max(256, min(4096, (16 << 20) // n_rows)))
    floor = max(min_similarity, 0.0)
    work = _AllPairs(matrix, k_eff, tie_key, exclude_self, chunk_rows, floor)

    def write(chunk: int, rows: np.ndarray, vals: np.ndarray) -> None:
        start, stop = work.bounds[chunk]
        keep = vals > floor
        indices[start:stop, :k_eff] = np.where(keep, rows, -1)
        scores[start:stop, :k_eff] = np.where(keep, vals, 0.0)
        if progress is not None:
            progress(stop - start)

    # Threads, not processes: BLAS, scipy's sparse kernels and numpy's bulk
    # operations release the GIL, and threads share the matrices and the
    # column thresholds without copies. A chunk's column candidates must reach
    # the later chunks before those are finished, so blocks are consumed in
    # order and a chunk is finished only after all earlier blocks were seen.
    workers = min(_n_workers(n_jobs), len(work.bounds))
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        window = workers + 1
        blocks: list[Future[Any] | None] = [pool.submit(work.block, c) for c in range(min(window, len(work.bounds)))]
        finals: list = []
        for chunk in range(len(work.bounds)):
            pending_block = blocks[chunk]
            assert pending_block is not None
            row_cands, col_cands = pending_block.result()
            blocks[chunk] = None
            if len(blocks) < len(work.bounds):
                blocks.append(pool.submit(work.block, len(blocks)))
            work.deliver(col_cands)
            finals.append(pool.submit(work.finish, chunk, row_cands))
            while finals and (finals[0].done() or len(finals) > window):
                write(chunk + 1 - len(finals), *finals.pop(0).result())
        while finals:
            write(len(work.bounds) - len(finals), *finals.pop(0).result())
    return Neighbours(indices, scores)


def _n_workers(n_jobs: int | None) -> int:
    cores = os.cpu_count() or 1
    if n_jobs is None or n_jobs < 1:
        return cores
    return min(n_jobs, cores)


def _nonzero(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.nonzero of a 2-D mask, through the flat positions: about 10x faster."""
    return np.divmod(np.flatnonzero(mask), mask.shape[1])


class _AllPairs:
    """Shared state of one all-pairs run: the split matrix and the candidates found so far."""

    def __init__(
        self, matrix: sp.csr_matrix, k: int, tie_key: np.ndarray, exclude_self: bool, chunk_rows: int, floor: float
    ):
        n_rows = matrix.shape[0]
        self.k, self.tie_key, self.exclude_self, self.floor = k, tie_key, exclude_self, floor
        self.width = min(k + _SPARE, n_rows - 1 if exclude_self else n_rows)
        self.bounds = [(s, min(s + chunk_rows, n_rows)) for s in range(0, n_rows, chunk_rows)]
        is_dense = np.zeros(matrix.shape[1], dtype=bool)
        is_dense[dense_columns(matrix)] = True
        self.dense = np.ascontiguousarray(matrix[:, is_dense].toarray())
        self.sparse = matrix[:, ~is_dense].tocsr()
        postings = self.sparse.T.tocsr()
        postings.sort_indices()
        self.postings = postings
        # Each posting keyed by (term, document) in one sorted int64, to find
        # where every term's documents reach a chunk start with one search.
        term_of = np.repeat(np.arange(postings.shape[0], dtype=np.int64), np.diff(postings.indptr))
        self.keys = term_of * n_rows + postings.indices
        self.matrix = matrix
        self.row_terms = np.diff(matrix.indptr)
        # Lower bound of the width-th best value each row has received from
        # earlier chunks' columns: later chunks only send values reaching it.
        self.column_cut = np.full(n_rows, -np.inf, dtype=np.float32)
        self.pending: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in self.bounds]
        self.pending_size = [0] * len(self.bounds)
        self.local = threading.local()
        self.chunk_of = np.repeat(np.arange(len(self.bounds)), [b - a for a, b in self.bounds])

    def _add_rare(self, block: np.ndarray, start: int, stop: int) -> None:
        """block += rare-term part of rows start:stop times rows start: (all later documents).

        Writes each product term straight into the block (scipy's csr_todense
        adds duplicates), with no symbolic pass and no product matrix: the
        (document, weight) pairs of row i are the posting lists of its terms,
        cut at document ``start``, gathered in pieces small enough to stay in
        cache. About twice as fast as scipy's sparse product plus the add.
        """
        postings, sparse = self.postings, self.sparse
        first = np.searchsorted(self.keys, np.arange(postings.shape[0], dtype=np.int64) * self.dense.shape[0] + start)
        at = sparse.indptr[start : stop + 1]
        terms, weights = sparse.indices[at[0] : at[-1]], sparse.data[at[0] : at[-1]]
        begins = first[terms]
        lengths = postings.indptr[terms + 1] - begins
        ends = np.concatenate(([0], np.cumsum(lengths)))
        row_ends = ends[at - at[0]]
        row = 0
        while row < stop - start:
            # Rows row:last hold at most _PIECE products (at least one row).
            last = int(np.searchsorted(row_ends, row_ends[row] + _PIECE, side="right")) - 1
            last = min(max(last, row + 1), stop - start)
            lo, hi = at[row] - at[0], at[last] - at[0]
            keep = lengths[lo:hi] > 0
            size, begin, weight = lengths[lo:hi][keep], begins[lo:hi][keep], weights[lo:hi][keep]
            if size.size:
                # Positions in the postings: runs begin..begin+size, built by
                # a cumulative sum of ones with a jump at each run start.
                pos = np.ones(int(size.sum()), dtype=postings.indices.dtype)
                pos[0] = begin[0]
                pos[np.cumsum(size[:-1])] = begin[1:] - (begin[:-1] + size[:-1] - 1)
                np.cumsum(pos, out=pos)
                columns = postings.indices.take(pos)
                columns -= start
                values = postings.data.take(pos)
                values *= np.repeat(weight, size)
                indptr = (row_ends[row : last + 1] - row_ends[row]).astype(columns.dtype)
                add_sparse_into(block[row:last], indptr, columns, values)
            row = last

    def block(self, chunk: int) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        """Scores of a chunk against itself and all later rows, reduced to candidates."""
        start, stop = self.bounds[chunk]
        # Each thread reuses one buffer for its blocks: a fresh 64 MB array per
        # chunk costs page faults worth ~10% of the GEMM.
        buffer = getattr(self.local, "buffer", None)
        if buffer is None:
            most = self.bounds[0][1] - self.bounds[0][0]
            buffer = self.local.buffer = np.empty(most * self.dense.shape[0], dtype=np.float32)
        block = buffer[: (stop - start) * (self.dense.shape[0] - start)].reshape(stop - start, -1)
        np.matmul(self.dense[start:stop], self.dense[start:].T, out=block)
        self._add_rare(block, start, stop)
        if self.exclude_self:
            local = np.arange(stop - start)
            block[local, local] = -np.inf
        # Along rows: candidates for the chunk's own rows among the later ones.
        r, c = _nonzero(block >= kth_lower_bound(block, self.width, 1, _ROW_GROUPS)[:, None])
        row_cands = (r + start, c + start, block[r, c])
        # Along columns: candidates the later rows get from this chunk.
        later = block[:, stop - start :]
        if later.shape[1] == 0:
            return row_cands, ()
        cut = np.maximum(self.column_cut[stop:], kth_lower_bound(later, self.width, 0, _COLUMN_GROUPS))
        np.maximum(self.column_cut[stop:], cut, out=self.column_cut[stop:])
        r, c = _nonzero(later >= cut)
        return row_cands, ((c + stop).astype(np.int32), (r + start).astype(np.int32), later[r, c])

    def deliver(self, col_cands: tuple[np.ndarray, ...]) -> None:
        """File a block's column candidates under the chunk that owns each row (main thread only).

        A chunk's pile is cut back to the best ``width`` per row whenever it
        outgrows a few times that; the width-th best kept value then raises
        the row's column cut, so later blocks send far fewer candidates.
        """
        if not col_cands:
            return
        targets, neighbours, values = col_cands
        owner = self.chunk_of[targets]
        order = np.argsort(owner, kind="stable")
        edges = np.flatnonzero(np.diff(owner[order])) + 1
        for part in np.split(order, edges):
            chunk = int(owner[part[0]])
            self.pending[chunk].append((targets[part], neighbours[part], values[part]))
            self.pending_size[chunk] += part.size
            start, stop = self.bounds[chunk]
            if self.pending_size[chunk] > _COMPACT * self.width * (stop - start):
                rows, cands, approx, rank = self._best(self.pending[chunk], start, stop)
                self.pending[chunk], self.pending_size[chunk] = [(rows, cands, approx)], rows.size
                full = rank == self.width - 1
                np.maximum.at(self.column_cut, rows[full], approx[full])

    def _best(self, parts: Sequence[tuple[np.ndarray, ...]], start: int, stop: int) -> tuple[np.ndarray, ...]:
        """The best ``width`` (row, candidate, value) per row of start:stop, sorted, with ranks."""
        rows, cands, approx = (np.concatenate(p) for p in zip(*parts, strict=True))
        # One float64 key sorts by row, then by value descending (values lie in [-1, 2)).
        order = np.argsort((rows - start) * 4.0 - np.clip(approx, -1.0, 2.0))
        rows, cands, approx = rows[order], cands[order], approx[order]
        first = np.searchsorted(rows, np.arange(start, stop))
        rank = np.arange(rows.size) - first[rows - start]
        keep = rank < self.width
        return rows[keep], cands[keep], approx[keep], rank[keep]

    def _rescore(self, rows: np.ndarray, candidates: np.ndarray) -> np.ndarray:
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

    def finish(self, chunk: int, row_cands: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Exact top k of a chunk's rows from its own and the earlier chunks' candidates.

        The float32 scores decide wherever they can: a row is re-scored in
        float64 only when two of its first k + 1 candidates, or one of them
        and the minimum similarity, lie closer than ``_AMBIGUOUS``, or when
        one of its scores sums enough products to drift (``_ROUNDING_SCALE``).
        Its order and ties are then exact too.
        """
        start, stop = self.bounds[chunk]
        rows, cands, approx, rank = self._best([row_cands, *self.pending[chunk]], start, stop)
        self.pending[chunk] = []
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
            exact = self._rescore(own[redo], candidates[redo])
            exact[np.isinf(scores[redo])] = -np.inf
            scores[redo] = exact
        if self.exclude_self:
            scores[candidates == own[:, None]] = -np.inf
        order = np.lexsort((self.tie_key[candidates], -scores), axis=1)[:, : self.k]
        picked = np.take_along_axis(candidates, order, axis=1)
        return picked.astype(np.int32), np.take_along_axis(scores, order, axis=1)
