"""Exact cosine nearest neighbours of every article, precomputed at training time.

``all_pairs_topk`` precomputes every article's top k on one machine, with
threads, over the split matrix of :mod:`recommender.blocks` (dense frequent
terms, sparse rare ones; float32 candidates finished in float64, so the lists
and scores are those of float64 brute force, tested to 1e-6 on 20 Newsgroups).
X X^T is symmetric, so a chunk of rows is multiplied only with itself and the
later rows: its block is read along rows (candidates for the chunk) and along
columns (candidates that later rows collect before their own turn).
:mod:`recommender.cluster` runs the same blocks as tasks on a Dask cluster.

Free text is answered on demand by :mod:`recommender.search`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from .blocks import COLUMN_GROUPS, Candidates, SplitMatrix, best_per_row, nonzero
from .kernels import kth_lower_bound

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


class Lists:
    """An all-pairs run's inputs made ready, and its (N, k) lists filled a run of rows at a time."""

    def __init__(
        self,
        matrix: sp.csr_matrix,
        k: int,
        tie_key: np.ndarray | None,
        min_similarity: float,
        chunk_rows: int | None,
        progress: Callable[[int], None] | None,
    ):
        self.matrix = sp.csr_matrix(matrix, dtype=np.float32)
        n_rows = self.matrix.shape[0]
        self.tie_key = np.arange(n_rows) if tie_key is None else np.asarray(tie_key)
        self.k_eff = min(k, max(n_rows - 1, 0))
        self.floor = max(min_similarity, 0.0)
        # A chunk's block is chunk_rows x N float32: about 64 MB (128 MB at 126k
        # rows, where the 256-row floor applies), one per thread.
        self.chunk_rows = int(max(256, min(4096, (16 << 20) // max(n_rows, 1)))) if chunk_rows is None else chunk_rows
        self.indices = np.full((n_rows, k), -1, dtype=np.int32)
        self.scores = np.zeros((n_rows, k), dtype=np.float32)
        self.progress = progress

    def write(self, start: int, stop: int, rows: np.ndarray, vals: np.ndarray) -> None:
        """Store the finished lists of rows start:stop, leaving out what does not pass the minimum."""
        keep = vals > self.floor
        self.indices[start:stop, : self.k_eff] = np.where(keep, rows, -1)
        self.scores[start:stop, : self.k_eff] = np.where(keep, vals, 0.0)
        if self.progress is not None:
            self.progress(stop - start)

    def neighbours(self) -> Neighbours:
        return Neighbours(self.indices, self.scores)


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
    out = Lists(matrix, k, tie_key, min_similarity, chunk_rows, progress)
    if out.k_eff == 0:
        return out.neighbours()
    work = _AllPairs(out.matrix, out.k_eff, out.tie_key, exclude_self, out.chunk_rows, out.floor)

    def write(chunk: int, rows: np.ndarray, vals: np.ndarray) -> None:
        out.write(*work.bounds[chunk], rows, vals)

    # Threads, not processes: BLAS, scipy's sparse kernels and numpy's bulk
    # operations release the GIL, and threads share the matrices and the
    # column thresholds without copies. A chunk's column candidates must reach
    # the later chunks before those are finished, so blocks are consumed in
    # order and a chunk is finished only after all earlier blocks were seen.
    workers = min(n_workers(n_jobs), len(work.bounds))
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
    return out.neighbours()


def n_workers(n_jobs: int | None) -> int:
    """Threads for ``n_jobs``: all cores when it is None or below 1, and never more than the cores."""
    cores = os.cpu_count() or 1
    if n_jobs is None or n_jobs < 1:
        return cores
    return min(n_jobs, cores)


class _AllPairs:
    """Shared state of one threaded all-pairs run: the split matrix and the candidates found so far."""

    def __init__(
        self, matrix: sp.csr_matrix, k: int, tie_key: np.ndarray, exclude_self: bool, chunk_rows: int, floor: float
    ):
        n_rows = matrix.shape[0]
        self.split = SplitMatrix(matrix, k, tie_key, exclude_self, floor)
        self.width = self.split.width
        self.bounds = [(s, min(s + chunk_rows, n_rows)) for s in range(0, n_rows, chunk_rows)]
        # Lower bound of the width-th best value each row has received from
        # earlier chunks' columns: later chunks only send values reaching it.
        self.column_cut = np.full(n_rows, -np.inf, dtype=np.float32)
        self.pending: list[list[Candidates]] = [[] for _ in self.bounds]
        self.pending_size = [0] * len(self.bounds)
        self.local = threading.local()
        self.chunk_of = np.repeat(np.arange(len(self.bounds)), [b - a for a, b in self.bounds])

    def block(self, chunk: int) -> tuple[Candidates, Candidates | tuple[()]]:
        """Scores of a chunk against itself and all later rows, reduced to candidates."""
        start, stop = self.bounds[chunk]
        n_rows = self.split.n_rows
        # Each thread reuses one buffer for its blocks: a fresh 64 MB array per
        # chunk costs page faults worth ~10% of the GEMM.
        buffer = getattr(self.local, "buffer", None)
        if buffer is None:
            most = self.bounds[0][1] - self.bounds[0][0]
            buffer = self.local.buffer = np.empty(most * n_rows, dtype=np.float32)
        block = self.split.scores(buffer, start, stop, start, n_rows)
        # Along rows: candidates for the chunk's own rows among the later ones.
        row_cands = self.split.row_candidates(block, start, start)
        # Along columns: candidates the later rows get from this chunk.
        later = block[:, stop - start :]
        if later.shape[1] == 0:
            return row_cands, ()
        cut = np.maximum(self.column_cut[stop:], kth_lower_bound(later, self.width, 0, COLUMN_GROUPS))
        np.maximum(self.column_cut[stop:], cut, out=self.column_cut[stop:])
        r, c = nonzero(later >= cut)
        return row_cands, ((c + stop).astype(np.int32), (r + start).astype(np.int32), later[r, c])

    def deliver(self, col_cands: Candidates | tuple[()]) -> None:
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
                rows, cands, approx, rank = best_per_row(self.pending[chunk], start, stop, self.width)
                self.pending[chunk], self.pending_size[chunk] = [(rows, cands, approx)], rows.size
                full = rank == self.width - 1
                np.maximum.at(self.column_cut, rows[full], approx[full])

    def finish(self, chunk: int, row_cands: Candidates) -> tuple[np.ndarray, np.ndarray]:
        """Exact top k of a chunk's rows from its own and the earlier chunks' candidates."""
        start, stop = self.bounds[chunk]
        parts, self.pending[chunk] = [row_cands, *self.pending[chunk]], []
        return self.split.finish(start, stop, parts)
