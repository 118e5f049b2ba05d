from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.neighbors import NearestNeighbors

from recommender.allpairs import all_pairs_topk
from recommender.kernels import kth_lower_bound
from recommender.search import SearchIndex
from recommender.values import SCORE_TOLERANCE


def random_matrix(n_rows: int, n_cols: int, density: float, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    m = sp.random(n_rows, n_cols, density=density, format="csr", random_state=rng, dtype=np.float64)
    # A few very common columns, like stop-word-ish terms, so the dense path is used.
    common = rng.random((n_rows, 3)) * (rng.random((n_rows, 3)) < 0.6)
    m = sp.hstack([sp.csr_matrix(common), m[:, 3:]], format="csr")
    norms = np.sqrt(m.multiply(m).sum(axis=1)).A.ravel()
    norms[norms == 0] = 1
    return sp.csr_matrix(sp.diags(1 / norms) @ m, dtype=np.float32)


def assert_same_up_to_ties(ind: np.ndarray, sc: np.ndarray, ref_ind: np.ndarray, ref_sc: np.ndarray) -> None:
    """Scores within the promised tolerance; the same neighbours, except where a tie at the cut lets either in."""
    np.testing.assert_allclose(sc, ref_sc, rtol=0, atol=SCORE_TOLERANCE)
    for row in range(ind.shape[0]):
        cut = ref_sc[row, -1]
        strict = set(ref_ind[row][ref_sc[row] > cut + SCORE_TOLERANCE])
        assert strict <= set(ind[row]), row


def test_all_pairs_matches_brute_force_cosine() -> None:
    x = random_matrix(700, 300, 0.03, seed=1)
    k = 10
    got = all_pairs_topk(x, k, min_similarity=0.0, n_jobs=1, chunk_rows=128)
    nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine", algorithm="brute").fit(x.astype(np.float64))
    dist, ind = nn.kneighbors(x.astype(np.float64))
    ref_ind, ref_sc = [], []
    for row in range(x.shape[0]):
        pairs = [(1 - d, i) for d, i in zip(dist[row], ind[row], strict=True) if i != row][:k]
        ref_ind.append([i for _, i in pairs])
        ref_sc.append([s for s, _ in pairs])
    ref_sc = np.array(ref_sc)
    valid = got.indices >= 0
    # Rows whose neighbours run out at zero similarity are padded, not filled with noise.
    assert np.all(ref_sc[~valid] <= 1e-6)
    assert_same_up_to_ties(got.indices, np.where(valid, got.scores, 0), np.array(ref_ind), np.where(valid, ref_sc, 0))


def test_parallel_chunks_equal_serial() -> None:
    x = random_matrix(500, 200, 0.05, seed=2)
    a = all_pairs_topk(x, 7, n_jobs=1, chunk_rows=100)
    b = all_pairs_topk(x, 7, n_jobs=2, chunk_rows=64)
    # Chunking changes the float32 summation order (and so the last bit of a
    # score, by CPU kernel): the promise is the tolerance, not bit equality.
    assert_same_up_to_ties(b.indices, b.scores, a.indices, a.scores)
    # Both also keep the promise against float64 brute force.
    brute = (x.astype(np.float64) @ x.T.astype(np.float64)).toarray()
    for got in (a, b):
        valid = got.indices >= 0
        rows = np.nonzero(valid)[0]
        np.testing.assert_allclose(got.scores[valid], brute[rows, got.indices[valid]], rtol=0, atol=SCORE_TOLERANCE)


def test_ties_are_broken_by_the_key_and_self_is_excluded() -> None:
    # Rows 0..3 identical: every pair ties at 1.0.
    x = sp.csr_matrix(np.array([[1, 0], [1, 0], [1, 0], [1, 0], [0, 1]], dtype=np.float32))
    key = np.array([3, 2, 1, 0, 4])
    got = all_pairs_topk(x, 2, tie_key=key, n_jobs=1)
    assert got.indices[0].tolist() == [3, 2]
    assert got.indices[3].tolist() == [2, 1]
    assert got.indices[4].tolist() == [-1, -1]  # nothing above zero similarity


def test_min_similarity_cuts_the_list() -> None:
    x = random_matrix(200, 100, 0.05, seed=3)
    got = all_pairs_topk(x, 10, min_similarity=0.3, n_jobs=1)
    assert np.all(got.scores[got.indices >= 0] > 0.3)
    assert np.all(got.scores[got.indices < 0] == 0)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 60), k=st.integers(1, 12), seed=st.integers(0, 10_000), width=st.integers(1, 8))
def test_properties_sorted_no_self_at_most_k_in_range(n: int, k: int, seed: int, width: int) -> None:
    x = random_matrix(n, 40, 0.1, seed)
    got = all_pairs_topk(x, k, n_jobs=1, chunk_rows=max(1, n // 3))
    assert got.indices.shape == (n, k)
    for row in range(n):
        valid = got.indices[row] >= 0
        # Padding only at the end.
        assert np.all(valid[: valid.sum()])
        ids = got.indices[row][valid]
        assert row not in ids and len(set(ids)) == ids.size
        s = got.scores[row][valid]
        assert np.all(np.diff(s) <= 1e-7)
        assert np.all((s > 0) & (s <= 1 + 1e-5))
    # The candidate cut never exceeds the true width-th largest value, along rows or columns.
    block = np.random.default_rng(seed).random((3, 50))
    along_rows = kth_lower_bound(block, width, 1, 16)
    along_columns = kth_lower_bound(block.T, width, 0, 16)
    for r in range(3):
        assert along_rows[r] <= np.sort(block[r])[-width]
        assert along_columns[r] == along_rows[r]


def test_search_index_matches_brute_force() -> None:
    x = random_matrix(400, 120, 0.05, seed=4)
    index = SearchIndex.from_matrix(x, np.arange(400))
    q = random_matrix(1, 120, 0.2, seed=5)
    cols, weights = q.indices, q.data
    found, scores = index.query(cols, weights, 15)
    brute = (x.astype(np.float64) @ q.astype(np.float64).T).toarray().ravel()
    order = np.lexsort((np.arange(400), -brute))
    expected = [i for i in order if brute[i] > 0][:15]
    assert found.tolist() == expected
    np.testing.assert_allclose(scores, brute[expected], atol=1e-6)
    allowed = np.zeros(400, dtype=bool)
    allowed[::2] = True
    found, _ = index.query(cols, weights, 15, allowed=allowed, exclude=np.array([expected[0]]))
    assert all(i % 2 == 0 and i != expected[0] for i in found)
    empty, _ = index.query(np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32), 5)
    assert empty.size == 0
