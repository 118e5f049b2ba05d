"""Counting terms over a corpus, in parallel: forked worker processes, chunk vocabularies merged.

The analysers are pure Python and single-threaded, so the corpus is cut into
chunks of about equal text, counted in forked workers (which inherit the
texts instead of receiving a pickled copy, and die with the training process)
and the chunks' vocabularies merged into one sorted vocabulary.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed

PARALLEL_MIN_DOCS = 4000
Analyzers = dict[str, Callable[[str], list[str]]]
Counts = tuple[list[str], sp.csr_matrix, sp.csr_matrix]


def count_terms(
    analyzers: Analyzers, languages: Sequence[str], titles: Sequence[str], bodies: Sequence[str], n_jobs: int | None
) -> Counts:
    """Sorted vocabulary and the title and body term counts of every document (CSR, one row each).

    ``languages[i]`` names the analyser of document ``i``.
    """
    n_docs = len(titles)
    jobs = effective_jobs(n_jobs)
    if jobs == 1 or n_docs < PARALLEL_MIN_DOCS:
        return count_chunk(analyzers, languages, titles, bodies)
    # Two chunks per worker, so that one slow chunk does not leave a core idle for long.
    bounds = text_bounds(titles, bodies, jobs * 2)
    return merge_counts(_count_in_processes(analyzers, languages, titles, bodies, bounds, jobs))


def text_bounds(titles: Sequence[str], bodies: Sequence[str], parts: int) -> list[int]:
    """Boundaries of at most ``parts`` runs of documents holding about equal text (the work is per character)."""
    n_docs = len(titles)
    sizes = np.fromiter((len(t) + len(b) for t, b in zip(titles, bodies, strict=True)), np.int64, n_docs)
    ends = np.searchsorted(np.cumsum(sizes), np.linspace(0, sizes.sum(), parts + 1)[1:-1])
    return [0, *sorted(set(np.minimum(ends + 1, n_docs).tolist()) - {0, n_docs}), n_docs]


def effective_jobs(n_jobs: int | None) -> int:
    cores = os.cpu_count() or 1
    if n_jobs is None or n_jobs == -1:
        return cores
    return max(1, min(int(n_jobs), cores))


# Texts handed to forked counting workers: a child process inherits them
# instead of receiving a pickled copy.
_FORK_INPUT: tuple[Analyzers, Sequence[str], Sequence[str], Sequence[str]] | None = None


def _count_forked(start: int, stop: int) -> Counts:
    assert _FORK_INPUT is not None
    analyzers, languages, titles, bodies = _FORK_INPUT
    return count_chunk(analyzers, languages[start:stop], titles[start:stop], bodies[start:stop])


def _count_in_processes(
    analyzers: Analyzers,
    languages: Sequence[str],
    titles: Sequence[str],
    bodies: Sequence[str],
    bounds: list[int],
    n_jobs: int,
) -> list[Counts]:
    """Count chunks in worker processes: forked where the platform can (no start-up, no copy), else joblib."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    global _FORK_INPUT
    ranges = list(itertools.pairwise(bounds))
    if "fork" not in multiprocessing.get_all_start_methods():  # pragma: no cover - not on Linux
        return Parallel(n_jobs=n_jobs)(
            delayed(count_chunk)(analyzers, languages[a:b], titles[a:b], bodies[a:b]) for a, b in ranges
        )
    _FORK_INPUT = (analyzers, languages, titles, bodies)
    try:
        with ProcessPoolExecutor(
            n_jobs,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            return list(pool.map(_count_forked, *zip(*ranges, strict=True)))
    finally:
        _FORK_INPUT = None


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    """Initializer of a forked counting worker: the worker ends when the training process dies.

    An idle worker waits on the task queue, whose pipe its siblings also hold
    open: after a SIGKILL of the training process, no end-of-file ever comes
    and the workers (about 130 MB each) would wait forever. On Linux the
    kernel kills the worker when its parent goes (PR_SET_PDEATHSIG; the
    "parent" is the thread that forked, which here is the one blocked in
    ``pool.map`` until the pool is shut down); elsewhere a thread watches the
    parent pid.
    """
    import signal
    import sys

    watched = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            watched = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
            watched = False
    if not watched:  # pragma: no cover - not on Linux
        import threading

        threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    # The parent may have died between the fork and prctl: the signal would never come.
    if os.getppid() != parent:
        os._exit(1)


def _exit_when_orphaned(parent: int) -> None:  # pragma: no cover - used where prctl is missing
    import time

    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def count_chunk(analyzers: Analyzers, languages: Sequence[str], titles: Sequence[str], bodies: Sequence[str]) -> Counts:
    """Term counts of one chunk, titles and bodies in one shared local vocabulary (sorted)."""
    vocabulary: dict[str, int] = {}
    matrices: list[tuple[np.ndarray, np.ndarray, list[int]]] = []
    single = next(iter(analyzers.values())) if len(analyzers) == 1 else None
    for texts in (titles, bodies):
        indptr = [0]
        indices: list[int] = []
        values: list[int] = []
        for at, text in enumerate(texts):
            if text:
                analyzer = single or analyzers[languages[at]]
                # Counter counts in C; the vocabulary is then touched once per distinct term.
                for term, count in Counter(analyzer(text)).items():
                    indices.append(vocabulary.setdefault(term, len(vocabulary)))
                    values.append(count)
            indptr.append(len(indices))
        matrices.append((np.asarray(values, dtype=np.float32), np.asarray(indices, dtype=np.int64), indptr))
    terms = sorted(vocabulary)
    order = np.empty(len(terms), dtype=np.int64)
    order[[vocabulary[t] for t in terms]] = np.arange(len(terms))
    out = []
    for counts, columns, row_starts in matrices:
        m = sp.csr_matrix(
            (counts, order[columns] if columns.size else columns, row_starts), shape=(len(row_starts) - 1, len(terms))
        )
        m.sort_indices()
        out.append(m)
    return terms, out[0], out[1]


def select_columns(matrix: sp.csr_matrix, columns: np.ndarray) -> sp.csr_matrix:
    """The given (sorted) columns of a CSR matrix, renumbered 0..len-1, without scipy's fancy indexing."""
    mapping = np.full(matrix.shape[1], -1, dtype=np.int64)
    mapping[columns] = np.arange(columns.size)
    new_columns = mapping[matrix.indices]
    kept = new_columns >= 0
    row_of = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    indptr = np.concatenate(([0], np.cumsum(np.bincount(row_of[kept], minlength=matrix.shape[0]))))
    return sp.csr_matrix((matrix.data[kept], new_columns[kept], indptr), shape=(matrix.shape[0], columns.size))


def merge_counts(
    parts: list[Counts],
) -> Counts:
    """Stack chunk counts in one sorted vocabulary."""
    vocabulary = sorted(set().union(*(terms for terms, _, _ in parts)))
    position = {t: i for i, t in enumerate(vocabulary)}
    titles: list[sp.csr_matrix] = []
    bodies: list[sp.csr_matrix] = []
    for terms, title_counts, body_counts in parts:
        remap = np.array([position[t] for t in terms], dtype=np.int64)
        for source, target in ((title_counts, titles), (body_counts, bodies)):
            target.append(
                sp.csr_matrix(
                    (source.data, remap[source.indices], source.indptr), shape=(source.shape[0], len(vocabulary))
                )
            )
    return vocabulary, sp.vstack(titles, format="csr"), sp.vstack(bodies, format="csr")
