"""Approximate candidates: an HNSW index over the LSA vectors, re-scored exactly.

Exact all-pairs costs the sum over terms of df^2, near-quadratic in the
corpus. Here each article's candidates are found without it, in two rounds:

1. its ``count`` nearest articles by plain LSA vector, from an HNSW graph
   (hnswlib, seeded and built on one thread, so that a corpus always gives
   the same graph), and the articles sharing its rarest terms (terms in at
   most :data:`RARE_MAX_DF` articles, whose df^2 is small);
2. provisional augmented vectors are made from round 1's best lexical
   candidates, and the ``count`` nearest articles by augmented vector join.

Every candidate pair is then scored exactly (TF-IDF cosine, sparse, row by
row), and the best ``pool`` by that score form the same
:class:`~recommender.allpairs.Neighbours` that exact all-pairs gives: lexical
scores, best first, ties by ``tie_key``, -1 padded. The semantic blend and
:func:`~recommender.semantic.rerank_neighbours` then run as in exact training.

What is lost: an exact lexical neighbour that neither the vectors nor a rare
term bring in. Measured (README, "Approximate mode"): recall@10 of the exact
lists 0.96 on BBC News and about 0.87 on 20 Newsgroups, P@10 unchanged.

hnswlib is the optional extra ``recommender[approximate]``, imported only here.
"""

from __future__ import annotations

import queue
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.sparse as sp

from .allpairs import Neighbours
from .errors import RecommenderError
from .semantic import augment

# Graph parameters of the HNSW index. Measured on 20 Newsgroups (40-d LSA):
# ef_construction 200 instead of 100 doubled the build time for +0.0003 recall.
_M = 16
_EF_CONSTRUCTION = 100
# Rows scored together: their dense scratch is rows x vocabulary float64.
_SCRATCH_BYTES = 32 << 20
# Candidates from shared rare terms (in at most RARE_MAX_DF articles): the
# words that quoted replies and re-posts share, which 40 LSA dimensions blur.
# Measured on 20 Newsgroups (100 nearest by vector): recall@10 of the exact
# lists 0.68 -> 0.855 and P@10 0.800 -> 0.843 (exact 0.842).
RARE_MAX_DF = 100
RARE_WIDTH = 50


class MissingExtraError(RecommenderError, ImportError):
    """An optional dependency is not installed."""


def require_index() -> Any:
    """The hnswlib module, or MissingExtraError naming the extra that brings it."""
    try:
        import hnswlib
    except ImportError as error:
        raise MissingExtraError(
            "approximate training needs hnswlib, which is not installed: "
            "pip install 'recommender[approximate]' (or train without --approximate)"
        ) from error
    return hnswlib


def nearest_by_vector(vectors: np.ndarray, count: int, *, seed: int = 0, n_jobs: int = 2) -> np.ndarray:
    """Each row's ``count`` approximate nearest rows by inner product, self left out, -1 padded (int64)."""
    n = vectors.shape[0]
    count = min(count, max(n - 1, 0))
    if count == 0 or vectors.shape[1] == 0:
        # No vectors (a vocabulary of two terms or fewer): the rare terms alone find candidates.
        return np.full((n, 0), -1, dtype=np.int64)
    if count >= n - 1:
        # Every other article is a candidate anyway.
        everyone = np.tile(np.arange(n), (n, 1))
        return everyone[~np.eye(n, dtype=bool)].reshape(n, n - 1)
    hnswlib = require_index()
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    index = hnswlib.Index(space="ip", dim=data.shape[1])
    index.init_index(max_elements=n, ef_construction=_EF_CONSTRUCTION, M=_M, random_seed=seed)
    # One thread builds: several insert in an order that varies from run to run.
    index.set_num_threads(1)
    index.add_items(data, np.arange(n))
    # Queries only read the graph: any thread count gives the same answers.
    index.set_num_threads(max(1, n_jobs))
    index.set_ef(count + 1)
    labels, _ = index.knn_query(data, k=count + 1)
    labels = labels.astype(np.int64)
    is_self = labels == np.arange(n)[:, None]
    # Drop self where found, else the farthest: count columns remain.
    drop = np.where(is_self.any(axis=1), np.argmax(is_self, axis=1), count)
    keep = np.ones_like(labels, dtype=bool)
    keep[np.arange(n), drop] = False
    return labels[keep].reshape(n, count)


def rare_term_candidates(matrix: sp.csr_matrix, width: int, max_df: int) -> np.ndarray:
    """Per row, the ``width`` rows with the largest dot product over terms in at most ``max_df`` articles.

    Its cost is the sum over those terms of df^2, at most ``max_df`` times the
    number of their postings: linear in the corpus for a fixed ``max_df``.
    """
    n = matrix.shape[0]
    x = sp.csr_matrix(matrix, dtype=np.float32)
    df = np.bincount(x.indices, minlength=x.shape[1])
    rare = sp.csr_matrix(x[:, np.flatnonzero((df >= 2) & (df <= max_df))])
    rare_t = rare.T.tocsr()
    out = np.full((n, width), -1, dtype=np.int64)
    step = 1024
    for start in range(0, n, step):
        stop = min(n, start + step)
        block = (rare[start:stop] @ rare_t).tocsr()
        rows = np.repeat(np.arange(stop - start), np.diff(block.indptr))
        values = np.where(block.indices == start + rows, 0.0, block.data)
        # By row, then by value, largest first (a value is at most 1: one key, one sort).
        order = np.argsort(rows * 4.0 - values, kind="stable")
        rows, cols, values = rows[order], block.indices[order], values[order]
        rows, cols = rows[values > 0], cols[values > 0]
        position = np.arange(rows.size) - np.searchsorted(rows, rows)
        keep = position < width
        out[start + rows[keep], position[keep]] = cols[keep]
    return out


def exact_scores(matrix: sp.csr_matrix, pairs: np.ndarray, n_jobs: int = 1) -> np.ndarray:
    """TF-IDF cosine of row i with each of ``pairs[i]`` (-1 entries score -inf), float64.

    A chunk of rows is spread into a dense scratch; each candidate's postings
    then gather the matching weights. Products are float32 (as the stored
    matrix) summed in float64: within about 1e-7 of float64 throughout.
    Chunks run on ``n_jobs`` threads (numpy's bulk operations release the GIL),
    each with its own scratch; every score is computed alone, so the result
    does not depend on the thread count.
    """
    n, width = pairs.shape
    out = np.full(pairs.shape, -np.inf)
    x = sp.csr_matrix(matrix, dtype=np.float32)
    n_cols = x.shape[1]
    step = max(1, min(n, _SCRATCH_BYTES // max(1, 4 * n_cols), (1 << 20) // max(1, width)))
    scratches: queue.SimpleQueue[np.ndarray] = queue.SimpleQueue()
    workers = max(1, n_jobs)
    for _ in range(workers):
        scratches.put(np.zeros(step * n_cols, dtype=np.float32))

    def score(start: int) -> None:
        scratch = scratches.get()
        stop = min(n, start + step)
        rows = x[start:stop]
        # Flat positions of the chunk's weights in the scratch; set, used, then zeroed again.
        spots = np.repeat(np.arange(stop - start) * n_cols, np.diff(rows.indptr)) + rows.indices
        scratch[spots] = rows.data
        chunk = pairs[start:stop]
        local, col = np.nonzero(chunk >= 0)
        if local.size:
            other = x[chunk[local, col]]
            nnz = np.diff(other.indptr)
            products = other.data * scratch[np.repeat(local * n_cols, nnz) + other.indices]
            sums = np.zeros(local.size)
            filled = nnz > 0
            if products.size:
                sums[filled] = np.add.reduceat(products, other.indptr[:-1][filled], dtype=np.float64)
            out[start + local, col] = sums
        scratch[spots] = 0.0
        scratches.put(scratch)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(score, range(0, n, step)))
    return out


def best_candidates(
    matrix: sp.csr_matrix,
    pairs: np.ndarray,
    pool: int,
    tie_key: np.ndarray,
    min_similarity: float,
    n_jobs: int = 1,
    known: Neighbours | None = None,
) -> Neighbours:
    """The best ``pool`` of each row's candidate ``pairs`` by exact TF-IDF cosine, as all-pairs lists them.

    ``known`` (lists already scored, such as an earlier round's) join the
    pairs with their scores, not scored again.
    """
    n = pairs.shape[0]
    pairs = np.where(pairs == np.arange(n)[:, None], -1, pairs)  # a row is never its own candidate
    scores = exact_scores(matrix, pairs, n_jobs)
    if known is not None:
        pairs = np.hstack([known.indices, pairs])
        scores = np.hstack([np.where(known.indices >= 0, known.scores, -np.inf), scores])
    # Repeated candidates (found by several rounds) count once.
    order = np.argsort(pairs, axis=1, kind="stable")
    pairs, scores = np.take_along_axis(pairs, order, axis=1), np.take_along_axis(scores, order, axis=1)
    if pairs.shape[1] > 1:
        repeated = np.zeros(pairs.shape, dtype=bool)
        repeated[:, 1:] = (pairs[:, 1:] == pairs[:, :-1]) & (pairs[:, 1:] >= 0)
        pairs[repeated] = -1
        scores[repeated | (pairs < 0)] = -np.inf
    scores[scores <= max(min_similarity, 0.0)] = -np.inf
    safe = np.where(pairs >= 0, pairs, 0)
    order = np.lexsort((tie_key[safe], -scores), axis=1)[:, :pool]
    best = np.take_along_axis(scores, order, axis=1)
    found = np.isfinite(best)
    indices = np.full((n, pool), -1, dtype=np.int32)
    values = np.zeros((n, pool), dtype=np.float32)
    width = order.shape[1]
    indices[:, :width] = np.where(found, np.take_along_axis(pairs, order, axis=1), -1)
    values[:, :width] = np.where(found, best, 0.0)
    return Neighbours(indices, values)


def approximate_candidates(
    matrix: sp.csr_matrix,
    vectors: np.ndarray,
    pool: int,
    *,
    count: int,
    tie_key: np.ndarray,
    min_similarity: float,
    neighbourhood: int,
    decay: float,
    strength: float,
    seed: int = 0,
    n_jobs: int = 2,
) -> Neighbours:
    """Each article's best ``pool`` lexical candidates among its approximate semantic neighbours.

    ``vectors`` are the plain LSA vectors; ``neighbourhood``, ``decay`` and
    ``strength`` make the provisional augmented vectors of round 2 (round 2 is
    skipped when they would equal the plain ones).
    """
    first = np.hstack(
        [
            nearest_by_vector(vectors, count, seed=seed, n_jobs=n_jobs),
            rare_term_candidates(matrix, RARE_WIDTH, RARE_MAX_DF),
        ]
    )
    provisional = best_candidates(matrix, first, pool, tie_key, min_similarity, n_jobs)
    if strength == 0 or neighbourhood == 0 or vectors.shape[1] == 0:
        return provisional
    mixed = augment(vectors, provisional.indices, count=neighbourhood, decay=decay, strength=strength)
    second = nearest_by_vector(mixed, count, seed=seed, n_jobs=n_jobs)
    # The best of round 1 stand for all of it: the best of the union is the same.
    return best_candidates(matrix, second, pool, tie_key, min_similarity, n_jobs, known=provisional)
