"""The exact all-pairs step as Dask tasks over row bands x column bands.

The corpus is cut into bands of rows. A task scores band i against band j
(j >= i: X X^T is symmetric, so each pair of bands is scored once) with the
split matrix of :mod:`recommender.blocks`, and keeps the best ``k + spare``
float32 candidates of each row of band i and of each row of band j. A band's
finishing task merges its candidates from every task that saw it and
re-scores them in float64 exactly as one machine does, so the lists are the
same (ids equal, scores within 1e-6). A worker that dies mid-run loses only
its tasks: the scheduler runs them again elsewhere (the input matrix is on
every worker). Dask is imported only inside :func:`cluster_all_pairs_topk`.
"""

from __future__ import annotations

import contextlib
import math
import operator
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from .allpairs import Lists, Neighbours
from .blocks import COLUMN_GROUPS, Candidates, SplitMatrix, best_per_row, nonzero
from .cluster import ClusterError, peak_memory
from .errors import RecommenderError
from .kernels import kth_lower_bound

# At least this many bands: band x band tasks outnumber the workers a few times over.
_MIN_BANDS = 8
# A tile's column candidates are cut back to the best width per row when they
# hold more than this many times that (4 on one machine; 2 holds a tile's
# memory to about 150 MB on arXiv).
_COMPACT = 2


@dataclass(frozen=True)
class _Inputs:
    """What every task needs, sent once to every worker."""

    token: str
    matrix: sp.csr_matrix
    tie_key: np.ndarray
    k: int
    exclude_self: bool
    floor: float
    bands: tuple[tuple[int, int], ...]
    chunk_rows: int


class _Worker:
    """A run's state in one worker process: the split matrix, and where each band starts in its postings."""

    def __init__(self, inputs: _Inputs):
        self.split = SplitMatrix(inputs.matrix, inputs.k, inputs.tie_key, inputs.exclude_self, inputs.floor)
        edges = [lo for lo, _ in inputs.bands]
        self.starts = {lo: self.split.term_starts(lo) for lo in edges}

    def band_starts(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray | None]:
        return self.starts[lo], self.starts.get(hi)


# One _Worker per worker process and run, built by the run's first task there:
# the run's other tasks on that worker reuse it instead of rebuilding it. Two
# trainings may share a cluster; a third run's state evicts the oldest (one
# whose clean-up never came, or a run that then rebuilds it: slower, not wrong).
_RUNS: dict[str, _Worker] = {}
_RUNS_KEPT = 2
_RUNS_LOCK = threading.Lock()


def _worker_of(inputs: _Inputs) -> _Worker:
    with _RUNS_LOCK:
        state = _RUNS.get(inputs.token)
        if state is None:
            while len(_RUNS) >= _RUNS_KEPT:
                _RUNS.pop(next(iter(_RUNS)))
            state = _RUNS[inputs.token] = _Worker(inputs)
        return state


def _forget(token: str) -> int:
    """Drop a run's state on a worker; the worker's peak resident memory in bytes."""
    with _RUNS_LOCK:
        _RUNS.pop(token, None)
    return peak_memory()


def _compact(parts: list[Candidates], start: int, stop: int, width: int) -> Candidates:
    rows, cands, approx, _ = best_per_row(parts, start, stop, width)
    return rows.astype(np.int32), cands.astype(np.int32), approx


def _tile(inputs: _Inputs, i: int, j: int) -> tuple[Candidates, Candidates | None]:
    """Band i against band j (j >= i): the best candidates of band i's rows, and of band j's rows.

    Off the diagonal a slice of band i's rows is scored against all of band j,
    and its block is read along rows (for band i) and along columns (for band
    j). On the diagonal a slice is scored only against itself and the band's
    later rows, as on one machine: both readings then belong to the band, and
    come back merged as the row side.
    """
    state = _worker_of(inputs)
    split = state.split
    (r0, r1), (c0, c1) = inputs.bands[i], inputs.bands[j]
    diagonal = i == j
    width, step = split.width, inputs.chunk_rows
    buffer = np.empty(step * (c1 - c0), dtype=np.float32)
    row_parts: list[Candidates] = []
    col_parts: list[Candidates] = []
    held = 0
    column_cut = np.full(c1 - c0, -np.inf, dtype=np.float32)
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(r0, r1, step):
            stop = min(start + step, r1)
            lo = start if diagonal else c0
            starts = (split.term_starts(start), state.starts.get(c1)) if diagonal else state.band_starts(c0, c1)
            block = split.scores(buffer, start, stop, lo, c1, starts)
            row_parts.append(_compact([split.row_candidates(block, start, lo)], start, stop, width))
            # Along columns: the candidates this slice gives band j's rows (on the diagonal, the later ones).
            first = stop if diagonal else c0
            later = block[:, first - lo :]
            if later.shape[1] == 0:
                continue
            cut = column_cut[first - c0 :]
            if start == r0 and later.shape[0] > width:
                # A tile starts with no cut: the first slice's exact width-th best per column sets one
                # (a bound from group maxima of so few rows lets about half the block through).
                bound = np.partition(later, later.shape[0] - width, axis=0)[later.shape[0] - width]
            else:
                bound = kth_lower_bound(later, width, 0, COLUMN_GROUPS)
            np.maximum(cut, bound, out=cut)
            r, c = nonzero(later >= cut)
            col_parts.append(((c + first).astype(np.int32), (r + start).astype(np.int32), later[r, c]))
            held += r.size
            if held > _COMPACT * width * (c1 - c0):
                rows, cands, approx, rank = best_per_row(col_parts, c0, c1, width)
                col_parts, held = [(rows, cands, approx)], rows.size
                full = rank == width - 1
                np.maximum.at(column_cut, rows[full] - c0, approx[full])
    # The row parts hold disjoint rows in order, each cut to its best width already.
    row_side: Candidates = tuple(np.concatenate(p) for p in zip(*row_parts, strict=True))  # type: ignore[assignment]
    col_side = _compact(col_parts, c0, c1, width) if col_parts else None
    if diagonal:
        return _compact([row_side] if col_side is None else [row_side, col_side], r0, r1, width), None
    return row_side, col_side


def _finish(inputs: _Inputs, band: int, *parts: Candidates | None) -> tuple[np.ndarray, np.ndarray]:
    """The exact top k of a band's rows from every tile's candidates for them."""
    split = _worker_of(inputs).split
    start, stop = inputs.bands[band]
    # Merged one part at a time: sorting all of them at once would hold several times their size.
    given = [p for p in parts if p is not None]
    merged = given[0]
    for part in given[1:]:
        merged = _compact([merged, part], start, stop, split.width)
    with threadpool_limits(limits=1, user_api="blas"):
        return split.finish(start, stop, [merged])


def band_bounds(n_rows: int, workers: int, chunk_rows: int, band_rows: int | None = None) -> list[tuple[int, int]]:
    """Row bands: enough of them that the band x band tasks keep every worker busy."""
    if band_rows is None:
        bands = max(_MIN_BANDS, math.ceil(math.sqrt(8 * max(workers, 1))))
        band_rows = max(chunk_rows, math.ceil(n_rows / bands))
    return [(s, min(s + band_rows, n_rows)) for s in range(0, n_rows, band_rows)]


@dataclass
class ClusterRun:
    """What a cluster run reports beside the lists: the work, as the scheduler recorded it, and memory."""

    workers: int = 0
    tasks: int = 0
    bands: int = 0
    band_rows: int = 0
    # Seconds of task work summed over the workers, by kind of task ("tile", "finish"), and of transfers.
    compute_seconds: dict[str, float] = field(default_factory=dict)
    transfer_seconds: float = 0.0
    worker_peak_bytes: list[int] = field(default_factory=list)
    # Each worker's peak before this run sent it anything (the interpreter and the libraries).
    worker_base_bytes: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """As stored in the bundle's manifest."""
        return {
            "workers": self.workers,
            "tasks": self.tasks,
            "bands": self.bands,
            "band_rows": self.band_rows,
            "compute_seconds": {name: round(value, 3) for name, value in sorted(self.compute_seconds.items())},
            "transfer_seconds": round(self.transfer_seconds, 3),
            "worker_peak_bytes": self.worker_peak_bytes,
            "worker_base_bytes": self.worker_base_bytes,
        }

    def add_stream(self, records: list[dict[str, Any]]) -> None:
        """Sum a task stream's records (distributed.get_task_stream) by the first word of their keys."""
        for record in records:
            kind = str(record.get("key", "")).split("-", 1)[0].strip("('\"")
            for part in record.get("startstops", ()):
                seconds = float(part["stop"]) - float(part["start"])
                if part.get("action") == "compute":
                    self.compute_seconds[kind] = self.compute_seconds.get(kind, 0.0) + seconds
                elif part.get("action") == "transfer":
                    self.transfer_seconds += seconds


def cluster_all_pairs_topk(
    client: Any,
    matrix: sp.csr_matrix,
    k: int,
    *,
    tie_key: np.ndarray | None = None,
    min_similarity: float = 0.0,
    exclude_self: bool = True,
    chunk_rows: int | None = None,
    band_rows: int | None = None,
    progress: Callable[[int], None] | None = None,
    report: ClusterRun | None = None,
) -> Neighbours:
    """``all_pairs_topk`` on the workers of ``client``: the same lists, the work spread over the cluster."""
    from distributed import get_task_stream

    out = Lists(matrix, k, tie_key, min_similarity, chunk_rows, progress)
    if out.k_eff == 0:
        return out.neighbours()
    workers = len(client.scheduler_info().get("workers", {}))
    if workers == 0:
        raise ClusterError("the cluster has no workers")
    bands = band_bounds(out.matrix.shape[0], workers, out.chunk_rows, band_rows)
    token = uuid.uuid4().hex
    inputs = _Inputs(token, out.matrix, out.tie_key, out.k_eff, exclude_self, out.floor, tuple(bands), out.chunk_rows)
    if report is not None:
        report.worker_base_bytes = sorted(client.run(peak_memory).values())
    shared = client.scatter(inputs, broadcast=True, hash=False)
    try:
        try:
            with get_task_stream(client) as stream:
                n_tasks = _run_tasks(client, shared, token, bands, out)
        except RecommenderError:
            raise
        except Exception as exc:  # a lost scheduler, workers that kept dying, a task's own error
            raise ClusterError(f"the cluster failed during the all-pairs step: {type(exc).__name__}: {exc}") from exc
        if report is not None:
            report.workers, report.tasks, report.bands = workers, n_tasks, len(bands)
            report.band_rows = bands[0][1] - bands[0][0]
            report.add_stream(stream.data)
    finally:
        with contextlib.suppress(Exception):  # a lost cluster already dropped everything
            peaks = client.run(_forget, token)
            if report is not None:
                report.worker_peak_bytes = sorted(peaks.values())
            client.cancel(shared)
    return out.neighbours()


def _run_tasks(client: Any, shared: Any, token: str, bands: list[tuple[int, int]], out: Lists) -> int:
    """Submit the tiles, their sides and the finishing tasks; write each band's lists as it is finished."""
    from distributed import as_completed

    tiles = {
        (i, j): client.submit(_tile, shared, i, j, key=f"tile-{token}-{i}-{j}", pure=False)
        for i in range(len(bands))
        for j in range(i, len(bands))
    }
    sides: dict[int, list[Any]] = {b: [] for b in range(len(bands))}
    for (i, j), tile in tiles.items():
        sides[i].append(client.submit(operator.getitem, tile, 0, key=f"rows-{token}-{i}-{j}"))
        if j != i:
            sides[j].append(client.submit(operator.getitem, tile, 1, key=f"cols-{token}-{i}-{j}"))
    finishes = {
        client.submit(_finish, shared, b, *parts, key=f"finish-{token}-{b}", pure=False): b
        for b, parts in sides.items()
    }
    n_tasks = len(tiles) + sum(len(parts) for parts in sides.values()) + len(finishes)
    # Holding no futures of the tiles lets the workers drop each one once its bands are finished.
    del tiles, sides
    for future in as_completed(finishes):
        out.write(*bands[finishes[future]], *future.result())
        future.release()
    return n_tasks
