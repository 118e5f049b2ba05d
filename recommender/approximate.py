"""Approximate candidates: exact all-pairs inside groups of similar articles, then shared rare terms.

Exact all-pairs costs the sum over terms of df^2, near-quadratic in the
corpus. Here each article's lexical candidates are found without all pairs:

1. **Groups.** Spherical k-means over the TF-IDF rows (an inverted-file
   index: about ``group_size`` articles per group) puts each article in its
   ``spread`` nearest groups; the exact all-pairs of
   :mod:`recommender.allpairs` runs inside every group. Two articles are
   compared when they share a group; the cost is about spread^2 / groups of
   exact all-pairs.
2. **Shared rare terms.** The articles with the largest dot product over the
   rare terms (the document frequencies whose sum of df^2 stays within
   :data:`RARE_BUDGET` per article) join, scored exactly: re-posts and
   quotes, whose rare words the centroids (frequent terms only) do not see.
3. **Neighbours of neighbours.** One round of the nearest-neighbour-descent
   join: the first :data:`FOLLOW` neighbours of each of a row's first
   :data:`FOLLOW` neighbours, scored exactly, and the rows that list it,
   with the score their list gives it.

The best ``pool`` by exact TF-IDF cosine form the same
:class:`~recommender.allpairs.Neighbours` that exact all-pairs gives (best
first, ties by ``tie_key``, -1 padded); the semantic blend, re-ranking and the
bundle then follow as in exact training. When grouping would not save work
(fewer than ``2 * spread^2`` groups), the lists are the exact ones.

What can be lost is a neighbour that shares no group, no rare term and no
neighbour with the article. Measured (README, "Approximate mode").

numba (the compiled loops of :mod:`recommender.pairkernels`) is the optional
extra ``recommender[approximate]``, imported only when it is needed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.sparse as sp

from .allpairs import Neighbours, all_pairs_topk, n_workers
from .errors import RecommenderError

# The sum of df^2 over the rare terms, per article (the work of step 2). On the 300k
# composed corpus: the terms in at most 1530 articles (143,115 of 146,053). Measured there,
# recall@10 of the final lists (FOLLOW 12): 0.9746 with 2000 (and RARE_WIDTH 50), 0.9833 with
# 12000, 0.9855 with 20000, which cost about 8 s more than 12000 on 2 cores.
RARE_BUDGET = 12000
# Rare-term candidates kept per article, before exact scoring (60: 0.9806 against 0.9833).
RARE_WIDTH = 100
# Neighbours followed per article in the join round (FOLLOW^2 candidates). Measured on the
# 300k composed corpus with RARE_BUDGET 12000, recall@10 of the final lists: 0.9823 with 10,
# 0.9833 with 12, 0.9850 with 16 (which scores 138 candidates per article against 73).
FOLLOW = 12
JOIN_ROUNDS = 1
# Rounds of k-means (the figures in the README were measured with 8).
_KMEANS_ROUNDS = 8
# The centroids live on the most frequent terms only (groups x this many float32: 0.4 GB at
# 10M articles). Measured on the 300k corpus: the same recall with the 32,768 most frequent
# of its 146,053 terms as with all of them; with the 4,138 above the rare terms, 0.0016 less.
_CENTROID_TERMS = 1 << 15
# The k-means is fitted on a seeded sample: a tenth of the rows, at least this many per group.
_FIT_SHARE = 0.1
_FIT_PER_GROUP = 50
# Kernel calls per thread: each call allocates scratch arrays of corpus size, so calls
# are few and large (at least _MIN_TASK_ROWS rows), yet enough to share out evenly.
_TASKS_PER_THREAD = 8
_MIN_TASK_ROWS = 4096
# Rows whose similarities to the centroids are computed at once (rows x groups float32).
_ASSIGN_ROWS = 1 << 16


class MissingExtraError(RecommenderError, ImportError):
    """An optional dependency is not installed."""


def require_kernels() -> Any:
    """The compiled loops, or MissingExtraError naming the extra that brings numba."""
    try:
        from . import pairkernels
    except ImportError as error:
        raise MissingExtraError(
            "approximate training needs numba, which is not installed: "
            "pip install 'recommender[approximate]' (or train without --approximate)"
        ) from error
    return pairkernels


def group_count(n_rows: int, group_size: int, spread: int) -> int:
    """How many groups a corpus is cut into; 1 means exact all-pairs (grouping would not save work)."""
    groups = n_rows // max(group_size, 1)
    return groups if groups >= 2 * spread * spread else 1


def nearest_groups(matrix: sp.csr_matrix, groups: int, spread: int, seed: int = 0) -> np.ndarray:
    """Each row's ``spread`` nearest centroids of a seeded spherical k-means of its TF-IDF rows (n x spread).

    The centroids are fitted on a sample of rows (see :data:`_FIT_SHARE`),
    over the :data:`_CENTROID_TERMS` most frequent terms; then every row joins
    its nearest. Groups of the TF-IDF rows follow the lexical neighbours more
    closely than groups of the LSA vectors: measured on the 300k corpus,
    recall@10 of the final lists 0.982 against 0.971 (both with FOLLOW 16), for 2 s more.
    """
    n = matrix.shape[0]
    df = np.bincount(matrix.indices, minlength=matrix.shape[1])
    columns = np.sort(np.argsort(-df, kind="stable")[:_CENTROID_TERMS])
    x = sp.csr_matrix(matrix[:, columns], dtype=np.float32)
    rng = np.random.default_rng(seed)
    size = min(n, max(groups * _FIT_PER_GROUP, int(n * _FIT_SHARE)))
    sample = x[np.sort(rng.choice(n, size, replace=False))]
    centroids = sample[np.sort(rng.choice(size, groups, replace=False))].toarray()
    for _ in range(_KMEANS_ROUNDS):
        nearest = assign_groups(sample, centroids, 1)[:, 0]
        members = sp.csr_matrix((np.ones(size, np.float32), (nearest, np.arange(size))), shape=(groups, size))
        sums = np.asarray((members @ sample).todense())
        lengths = np.linalg.norm(sums, axis=1, keepdims=True)
        # An empty group keeps its centroid.
        centroids = np.where(lengths > 0, sums / np.where(lengths > 0, lengths, 1.0), centroids).astype(np.float32)
    return assign_groups(x, centroids, spread)


def assign_groups(rows: np.ndarray | sp.csr_matrix, centroids: np.ndarray, spread: int) -> np.ndarray:
    """Each row's ``spread`` largest dot products with the centroids, the largest first, int64."""
    out = np.empty((rows.shape[0], spread), dtype=np.int64)
    for start in range(0, rows.shape[0], _ASSIGN_ROWS):
        sims = np.asarray(rows[start : start + _ASSIGN_ROWS] @ centroids.T)
        if spread == 1:
            out[start : start + _ASSIGN_ROWS, 0] = np.argmax(sims, axis=1)
        else:
            best = np.argpartition(-sims, spread - 1, axis=1)[:, :spread]
            ranks = np.argsort(-np.take_along_axis(sims, best, axis=1), axis=1, kind="stable")
            out[start : start + _ASSIGN_ROWS] = np.take_along_axis(best, ranks, axis=1)
    return out


def grouped_lists(
    matrix: sp.csr_matrix,
    membership: np.ndarray,
    pool: int,
    tie_key: np.ndarray,
    min_similarity: float,
    n_jobs: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact all-pairs inside every group; each row's lists of its groups side by side (n x spread*pool).

    Groups run on ``n_jobs`` threads, one thread each, the largest first (a
    group's cost grows with the square of its size, so a large one started
    last would run alone). A row's k-th group fills its k-th ``pool``
    columns, so the result does not depend on the order in which groups finish.
    """
    n, spread = membership.shape
    # int32 and float32 (the dtypes of all-pairs' lists): at 10M articles, 10M x 200 entries with the defaults.
    indices = np.full((n, spread * pool), -1, dtype=np.int32)
    scores = np.zeros((n, spread * pool), dtype=np.float32)
    order = np.argsort(membership.ravel(), kind="stable")
    cuts = np.flatnonzero(np.diff(membership.ravel()[order])) + 1

    def run(places: np.ndarray) -> None:
        members, slots = np.divmod(places, spread)  # ascending rows: positions were sorted stably
        if members.size < 2:
            return
        sub = matrix[members]
        # Only the group's own terms: the all-pairs step's per-term work follows the vocabulary.
        sub = sub[:, np.unique(sub.indices)]
        lists = all_pairs_topk(sub, pool, tie_key=tie_key[members], min_similarity=min_similarity, n_jobs=1)
        columns = slots[:, None] * pool + np.arange(pool)
        found = lists.indices >= 0
        indices[members[:, None], columns] = np.where(found, members[np.where(found, lists.indices, 0)], -1)
        scores[members[:, None], columns] = lists.scores

    parts = sorted(np.split(order, cuts), key=len, reverse=True)
    with ThreadPoolExecutor(n_workers(n_jobs)) as threads:
        list(threads.map(run, parts))
    return indices, scores


def rare_threshold(df: np.ndarray, n_rows: int, budget: int = RARE_BUDGET) -> int:
    """The largest document frequency such that the terms up to it cost at most ``budget`` per row."""
    counts = np.bincount(df)
    cost = np.cumsum(counts * np.arange(counts.size, dtype=np.float64) ** 2)
    return int(np.searchsorted(cost, budget * n_rows, side="right")) - 1


def approximate_candidates(
    matrix: sp.csr_matrix,
    pool: int,
    *,
    group_size: int,
    spread: int,
    tie_key: np.ndarray,
    min_similarity: float,
    seed: int = 0,
    n_jobs: int | None = None,
) -> Neighbours:
    """Each article's best ``pool`` lexical candidates, found in its groups, rare terms and neighbours' lists.

    With fewer than ``2 * spread^2`` groups the lists are exact all-pairs'.
    """
    n = matrix.shape[0]
    groups = group_count(n, group_size, spread)
    if groups == 1:
        return all_pairs_topk(matrix, pool, tie_key=tie_key, min_similarity=min_similarity, n_jobs=n_jobs)
    kernels = require_kernels()
    x = sp.csr_matrix(matrix, dtype=np.float32)
    x.sort_indices()
    membership = nearest_groups(x, groups, spread, seed)
    # From here on the rows are renumbered in the order of their nearest group: a row's
    # candidates then mostly lie near it, and the rows they read stay in the cache (measured
    # on the 300k corpus: the rare terms and the merges 40 s -> 30 s). Each row is still
    # computed alone, by the same sums, so the lists are the same as without it.
    order = np.argsort(membership[:, 0], kind="stable")
    x = x[order]
    tie = np.ascontiguousarray(np.asarray(tie_key)[order], dtype=np.int64)
    known = grouped_lists(x, membership[order], pool, tie, min_similarity, n_jobs)
    df = np.bincount(x.indices, minlength=x.shape[1])
    is_rare = (df >= 2) & (df <= rare_threshold(df, n))
    postings = x.T.tocsr()
    postings.sort_indices()
    floor = max(min_similarity, 0.0)
    rows = (x.indptr, x.indices, x.data)
    workers = n_workers(n_jobs)
    step = max(_MIN_TASK_ROWS, -(-n // (workers * _TASKS_PER_THREAD)))
    with ThreadPoolExecutor(workers) as threads:

        def each(call: Any) -> None:
            """call(lo, hi) over all rows, ``step`` rows at a time."""
            list(threads.map(lambda lo: call(lo, min(lo + step, n)), range(0, n, step)))

        def merged(
            lists: tuple[np.ndarray, np.ndarray], extra: np.ndarray, follow: int
        ) -> tuple[np.ndarray, np.ndarray]:
            """Each row's best ``pool`` of its lists and of the new candidates (see merge_scored)."""
            out = (np.full((n, pool), -1, dtype=np.int32), np.zeros((n, pool)))
            none = (np.zeros(n + 1, np.int64), np.zeros(0, np.int32), np.zeros(0))
            reverse = kernels.reverse_lists(*lists, pool) if follow else none
            each(
                lambda lo, hi: kernels.merge_scored(
                    lo, hi, *rows, x.shape[1], *lists, extra, follow, *reverse, tie, floor, *out
                )
            )
            return out

        rare = np.full((n, RARE_WIDTH), -1, dtype=np.int32)
        each(
            lambda lo, hi: kernels.shared_rare_terms(
                lo, hi, *rows, postings.indptr, postings.indices, postings.data, is_rare, tie, rare
            )
        )
        lists = merged(known, rare, 0)
        for _ in range(JOIN_ROUNDS):
            lists = merged(lists, np.full((n, 0), -1, dtype=np.int32), FOLLOW)
    found = lists[0] >= 0
    indices = np.empty((n, pool), dtype=np.int32)
    scores = np.empty((n, pool), dtype=np.float32)
    indices[order] = np.where(found, order[np.where(found, lists[0], 0)], -1)
    scores[order] = np.where(found, lists[1], 0.0)
    return Neighbours(indices, scores)
