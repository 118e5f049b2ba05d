"""train --approximate: exact all-pairs inside groups, shared rare terms and neighbours' lists."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest
import scipy.sparse as sp

import recommender
from benchmarks.approximate import precision, recall_at
from recommender.allpairs import all_pairs_topk
from recommender.approximate import (
    MissingExtraError,
    approximate_candidates,
    assign_groups,
    group_count,
    nearest_groups,
    rare_threshold,
)
from recommender.cli import main
from recommender.corpus import read_corpus
from recommender.errors import InvalidInputError
from recommender.evaluate import hide_labels
from recommender.fit import fit_parts
from recommender.options import TrainOptions
from recommender.recommend import Recommender

from .conftest import DEMO_CORPUS, TINY, shared_corpus, write_jsonl


def _matrix(parts) -> sp.csr_matrix:
    a = parts.arrays
    n = len(parts.ids)
    return sp.csr_matrix((a["matrix_data"], a["matrix_indices"], a["matrix_indptr"]), shape=(n, a["idf"].size))


def check_lists(parts, sample: int | None = None) -> None:
    """Sorted, no self, -1 padding last, and every score the exact blend of its pair (float64, 1e-6)."""
    a = parts.arrays
    x = _matrix(parts).astype(np.float64)
    augmented = np.asarray(a["lsa_augmented"], dtype=np.float64)
    weight = parts.manifest["parameters"]["semantic_weight"]
    idx, scores = a["neighbours"], a["neighbour_scores"]
    rows = range(len(idx)) if sample is None else np.random.default_rng(0).choice(len(idx), sample, replace=False)
    for i in rows:
        valid = idx[i] >= 0
        assert not np.any(valid[np.argmin(valid) :]) or valid.all(), "padding must come last"
        listed = idx[i][valid]
        assert i not in listed
        assert len(set(listed.tolist())) == listed.size
        assert np.all(np.diff(scores[i][valid]) <= 1e-7)
        lexical = (x[listed] @ x[i].T).toarray().ravel()
        semantic = augmented[listed] @ augmented[i] if augmented.shape[1] else 0.0
        np.testing.assert_allclose(scores[i][valid], (1 - weight) * lexical + weight * semantic, atol=1e-6)


def _random_matrix(n: int, terms: int, seed: int) -> sp.csr_matrix:
    """An L2-normalised sparse matrix with topics (rows of one topic share its terms) and rare words."""
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, 8, size=n)
    dense = np.zeros((n, terms))
    for i in range(n):
        own = rng.choice(np.arange(topic[i] * 20, topic[i] * 20 + 40) % terms, size=12)
        rare = rng.integers(160, terms, size=4)
        dense[i, own] = rng.random(12) + 0.1
        dense[i, rare] = rng.random(4) + 0.5
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    return sp.csr_matrix(dense.astype(np.float32))


def test_tiny_corpus_lists_are_valid_and_stored(tmp_path, tiny_options):
    articles = read_corpus(write_jsonl(tmp_path / "tiny.jsonl", TINY)).articles
    options = dataclasses.replace(tiny_options, approximate=True, approximate_group_size=2, approximate_spread=1)
    parts = fit_parts(articles, options)
    check_lists(parts)
    assert parts.manifest["parameters"]["approximate"] is True
    assert parts.manifest["parameters"]["approximate_group_size"] == 2
    assert parts.manifest["parameters"]["approximate_spread"] == 1
    rec = Recommender.fit(articles, options)
    rec.save(tmp_path / "models")
    loaded = Recommender.load(tmp_path / "models")
    assert [i.id for i in loaded.related("f1", 3).items] == [i.id for i in rec.related("f1", 3).items]


def test_demo_corpus_uses_groups_and_is_deterministic():
    articles = read_corpus(DEMO_CORPUS).articles
    # 72 articles in groups of about 4: 18 groups, each article in its nearest.
    options = TrainOptions(approximate=True, approximate_group_size=4, approximate_spread=1, min_df=1, n_jobs=1)
    assert group_count(len(articles), 4, 1) == 18
    one, two = fit_parts(articles, options), fit_parts(articles, dataclasses.replace(options, n_jobs=2))
    check_lists(one)
    # Same lists whatever the thread count (every row is computed alone).
    for name in ("neighbours", "neighbour_scores", "candidate_floor", "dup_group", "lsa_augmented"):
        np.testing.assert_array_equal(one.arrays[name], two.arrays[name])
    floor = one.arrays["candidate_floor"]
    assert np.all((floor >= 0) & (floor < 1))
    exact = fit_parts(articles, dataclasses.replace(options, approximate=False))
    assert recall_at(exact.arrays["neighbours"], one.arrays["neighbours"]) >= 0.9


def test_group_count_falls_back_to_exact_when_grouping_saves_nothing():
    assert group_count(300_000, 3000, 3) == 100
    # Fewer than 2 * spread^2 groups: spread^2 / groups of the pairs would be half of them or more.
    assert group_count(18_846, 3000, 3) == 1
    assert group_count(54_000, 3000, 3) == 18
    assert group_count(53_999, 3000, 3) == 1
    assert group_count(1, 2, 1) == 1


def test_small_corpus_gets_the_exact_lists():
    x = _random_matrix(300, 400, seed=3)
    tie = np.arange(300)
    approx = approximate_candidates(x, 10, group_size=3000, spread=3, tie_key=tie, min_similarity=0.0)
    exact = all_pairs_topk(x, 10, tie_key=tie)
    np.testing.assert_array_equal(approx.indices, exact.indices)
    np.testing.assert_array_equal(approx.scores, exact.scores)


def test_grouped_lists_do_not_depend_on_the_row_order(monkeypatch):
    # The same articles and groups in another row order: inside, the rows are renumbered by
    # nearest group (ties in input order), so the kernels see them in another order.
    pytest.importorskip("recommender.pairkernels")
    import recommender.approximate as approximate

    n = 600
    x = _random_matrix(n, 400, seed=7)
    tie = np.random.default_rng(2).permutation(n)
    groups = np.random.default_rng(3).integers(0, 30, size=(n, 2))
    groups[:, 1] = (groups[:, 0] + 1 + groups[:, 1] % 29) % 30  # two distinct groups per row
    shuffle = np.random.default_rng(4).permutation(n)
    found = []
    for order in (np.arange(n), shuffle):
        monkeypatch.setattr(approximate, "nearest_groups", lambda *args, g=groups[order]: g)
        lists = approximate_candidates(
            x[order], 12, group_size=20, spread=2, tie_key=tie[order], min_similarity=0.05, n_jobs=1
        )
        indices = np.full((n, 12), -1)
        scores = np.zeros((n, 12), dtype=np.float32)
        indices[order] = np.where(lists.indices >= 0, order[lists.indices], -1)
        scores[order] = lists.scores
        found.append((indices, scores))
    np.testing.assert_array_equal(found[0][0], found[1][0])
    np.testing.assert_allclose(found[0][1], found[1][1], rtol=0, atol=1e-6)


def test_grouped_lists_hold_exact_scores_and_find_almost_all():
    n = 600
    x = _random_matrix(n, 400, seed=5)
    tie = np.random.default_rng(1).permutation(n)
    approx = approximate_candidates(x, 12, group_size=20, spread=2, tie_key=tie, min_similarity=0.05)
    brute = (x.astype(np.float64) @ x.T.astype(np.float64)).toarray()
    np.fill_diagonal(brute, -np.inf)
    for i in range(n):
        listed = approx.indices[i][approx.indices[i] >= 0]
        assert i not in listed and len(set(listed.tolist())) == listed.size
        np.testing.assert_allclose(approx.scores[i][: listed.size], brute[i, listed], atol=1e-6)
        assert np.all(approx.scores[i][: listed.size] > 0.05)
        assert np.all(approx.scores[i][listed.size :] == 0)
        # Best first; equal scores (to float32) by the tie key.
        key = np.round(brute[i, listed], 6)
        assert all((key[a], -tie[listed[a]]) >= (key[a + 1], -tie[listed[a + 1]]) for a in range(listed.size - 1))
    exact = all_pairs_topk(x, 12, tie_key=tie, min_similarity=0.05)
    assert recall_at(exact.indices, approx.indices, 12) >= 0.9


def test_kernels_rare_terms_and_neighbours_lists():
    pairkernels = pytest.importorskip("recommender.pairkernels")
    # Row 0 shares term 0 with row 1 and term 3 with row 3; row 4 shares nothing.
    dense = np.array([[1, 0, 0, 1, 0], [1, 1, 0, 0, 0], [0, 1, 1, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1]], np.float32)
    x = sp.csr_matrix(dense / np.linalg.norm(dense, axis=1, keepdims=True))
    postings = x.T.tocsr()
    tie = np.arange(5, dtype=np.int64)
    is_rare = np.array([True, True, True, True, False])
    rare = np.full((5, 3), -1, dtype=np.int64)
    posting_arrays = (postings.indptr, postings.indices, postings.data)
    pairkernels.shared_rare_terms(0, 5, x.indptr, x.indices, x.data, *posting_arrays, is_rare, tie, rare)
    assert rare[0].tolist() == [1, 3, -1]
    assert rare[4].tolist() == [-1, -1, -1]
    # Known lists: 0 lists 1, 1 lists 2. Extra candidates: 0 gets 3, 3 and 4 get 0.
    known = np.array([[1, -1], [2, -1], [-1, -1], [-1, -1], [-1, -1]], dtype=np.int64)
    half = float(np.float64(x.data[0]) ** 2)  # 0.5 as the float32 weights give it
    known_scores = np.array([[half, 0], [half, 0], [0, 0], [0, 0], [0, 0]])
    reverse = pairkernels.reverse_lists(known, known_scores, 1)
    assert reverse[0].tolist() == [0, 0, 1, 2, 2, 2] and reverse[1].tolist() == [0, 1]
    assert reverse[2].tolist() == [half, half]
    extra = np.array([[3], [-1], [-1], [0], [0]], dtype=np.int64)
    out, out_scores = np.full((5, 2), -1, dtype=np.int64), np.zeros((5, 2))
    args = (x.indptr, x.indices, x.data, 5, known, known_scores, extra, 1, *reverse, tie, 0.0, out, out_scores)
    scored = pairkernels.merge_scored(0, 5, *args)
    assert out[0].tolist() == [1, 3]  # known 1, extra 3; 2 (via 1's list) scores 0 and is left out
    np.testing.assert_allclose(out_scores[0], [0.5, 0.5], atol=1e-7)
    assert out[1].tolist() == [0, 2]  # 0 lists 1: found through the reverse list; equal scores by tie key
    assert out[2].tolist() == [1, -1]  # 1 lists 2
    np.testing.assert_allclose(out_scores[1:3, 0], [half, half])  # the score the holder's list gives
    assert out[3].tolist() == [0, -1]
    assert out[4].tolist() == [-1, -1]
    assert scored == 4  # 0: 3 and 2; 3: 0; 4: 0 (known pairs and rows that list a row are not scored)
    # A holder's score is taken as it is: a wrong one shows (it is not scored again).
    wrong = (reverse[0], reverse[1], np.array([0.25, 0.75]))
    out, out_scores = np.full((5, 2), -1, dtype=np.int64), np.zeros((5, 2))
    args = (x.indptr, x.indices, x.data, 5, known, known_scores, extra, 1, *wrong, tie, 0.0, out, out_scores)
    pairkernels.merge_scored(0, 5, *args)
    assert out[1].tolist() == [2, 0] and out_scores[1].tolist() == [half, 0.25]
    assert out[2].tolist() == [1, -1] and out_scores[2, 0] == 0.75


def test_reverse_lists_match_a_plain_count():
    pairkernels = pytest.importorskip("recommender.pairkernels")
    rng = np.random.default_rng(5)
    lists = rng.integers(-1, 40, size=(40, 6)).astype(np.int32)
    scores = rng.random((40, 6))
    for width in (0, 1, 4, 6, 9):
        pointer, rows, held = pairkernels.reverse_lists(lists, scores, width)
        assert pointer.size == 41 and pointer[0] == 0 and rows.size == held.size == pointer[-1]
        for j in range(40):
            # A row listing j twice is held twice, as the lists say, with each entry's score.
            expected = [(i, scores[i, u]) for i in range(40) for u in range(min(width, 6)) if lists[i, u] == j]
            span = slice(pointer[j], pointer[j + 1])
            assert list(zip(rows[span].tolist(), held[span].tolist(), strict=True)) == expected
    with pytest.raises(ValueError, match="do not have"):
        pairkernels.reverse_lists(lists[:10], scores[:10], 6)


def test_nearest_groups_are_the_nearest_centroids_and_repeatable():
    rng = np.random.default_rng(4)
    unit = rng.standard_normal((300, 6)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    centroids = unit[:7]
    found = assign_groups(unit, centroids, 3)
    expected = np.argsort(-(unit @ centroids.T), axis=1)[:, :3]
    np.testing.assert_array_equal(found, expected)  # nearest first
    assert assign_groups(unit, centroids, 1)[:, 0].tolist() == expected[:, 0].tolist()
    # Six planted topics (rows of a topic share its ten terms), six groups: every article in
    # two distinct groups, its topic's group first among them, the same each time.
    topic = np.repeat(np.arange(6), 50)
    dense = np.zeros((300, 60), dtype=np.float32)
    for i, t in enumerate(topic):
        dense[i, t * 10 + rng.choice(10, 6, replace=False)] = rng.random(6) + 0.5
        dense[i, rng.integers(0, 60)] += 0.1
    x = sp.csr_matrix(dense / np.linalg.norm(dense, axis=1, keepdims=True))
    groups = nearest_groups(x, 6, 2)
    assert groups.shape == (300, 2) and np.all(groups[:, 0] != groups[:, 1])
    assert groups.min() >= 0 and groups.max() < 6
    np.testing.assert_array_equal(groups, nearest_groups(x, 6, 2))
    # k-means may merge two topics and split another, but two articles of one topic share a
    # group (random pairs of 2 of 6 groups would share one 60 % of the time), and a topic's
    # articles have at most two nearest groups.
    shared = (groups[:, None, :, None] == groups[None, :, None, :]).any(axis=(2, 3))
    assert shared[topic[:, None] == topic[None, :]].mean() >= 0.99
    home = nearest_groups(x, 6, 1)[:, 0]
    assert all(np.unique(home[topic == t]).size <= 2 for t in range(6))
    np.testing.assert_array_equal(home, groups[:, 0])


def test_rare_threshold_keeps_the_cost_within_the_budget():
    df = np.array([1, 2, 2, 3, 10, 50, 50])
    # The sum of df^2 over the terms up to each df, for 10 rows: 1 (df 1), 9 (2), 18 (3 to 9), 118 (10 to 49), 5118.
    assert rare_threshold(df, 10, budget=1) == 2
    assert rare_threshold(df, 10, budget=2) == 9
    assert rare_threshold(df, 10, budget=12) == 49
    assert rare_threshold(df, 10, budget=1000) == 50


def test_options_are_validated():
    with pytest.raises(InvalidInputError, match=r"approximate must be true or false, got 1"):
        TrainOptions(approximate=1).validate()  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"approximate_group_size must be an integer in \[2, 1000000\], got 1"):
        TrainOptions(approximate_group_size=1).validate()
    with pytest.raises(InvalidInputError, match=r"approximate_spread must be an integer in \[1, 16\], got 17"):
        TrainOptions(approximate_spread=17).validate()
    # The groups come from the TF-IDF rows: the semantic view may be off.
    TrainOptions(approximate=True, semantic_components=0).validate()
    assert TrainOptions.from_parameters({"approximate": True}).approximate is True


def test_cli_flags_are_checked(tmp_path, capsys):
    corpus = write_jsonl(tmp_path / "tiny.jsonl", TINY)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--corpus", str(corpus), "--models-dir", str(tmp_path / "m"), "--approximate-spread", "0"])
    assert exit_info.value.code == 2
    assert "--approximate-spread must be an integer in [1, 16], got 0" in capsys.readouterr().err
    flags = ["--approximate", "--approximate-group-size", "2", "--approximate-spread", "1", "--min-df", "1"]
    code = main(["train", "--corpus", str(corpus), "--models-dir", str(tmp_path / "m"), "--quiet", *flags])
    assert code == 0


def test_without_the_extra_the_error_names_it(monkeypatch, tmp_path, capsys):
    # numba unimportable, and the kernels module forgotten so that it is imported again.
    monkeypatch.setitem(sys.modules, "numba", None)
    monkeypatch.delitem(sys.modules, "recommender.pairkernels", raising=False)
    monkeypatch.delattr(recommender, "pairkernels", raising=False)
    articles = read_corpus(write_jsonl(tmp_path / "tiny.jsonl", TINY)).articles
    with pytest.raises(MissingExtraError, match=r"pip install 'recommender\[approximate\]'"):
        fit_parts(articles, TrainOptions(approximate=True, min_df=1))
    corpus = write_jsonl(tmp_path / "tiny2.jsonl", TINY)
    code = main(["train", "--corpus", str(corpus), "--models-dir", str(tmp_path / "m"), "--approximate", "--quiet"])
    assert code == 1
    assert "recommender[approximate]" in capsys.readouterr().err
    assert not (tmp_path / "m" / "current").exists()


@pytest.mark.corpora
def test_bbc_close_to_exact():
    articles = read_corpus(shared_corpus("bbc-news.jsonl.gz")).articles
    hidden = [hide_labels(a) for a in articles]
    exact = fit_parts(hidden, TrainOptions())
    # The defaults leave BBC News's 2,225 articles in one group: the exact lists.
    plain = fit_parts(hidden, TrainOptions(approximate=True))
    np.testing.assert_array_equal(plain.arrays["neighbours"], exact.arrays["neighbours"])
    # Groups of 60 (37 groups, each article in 2): measured recall@10 0.993, P@10 0.9536 against 0.9537.
    grouped = TrainOptions(approximate=True, approximate_group_size=60, approximate_spread=2)
    approx = fit_parts(hidden, grouped)
    check_lists(approx, sample=200)
    assert approx.manifest["parameters"]["approximate"] is True
    assert recall_at(exact.arrays["neighbours"], approx.arrays["neighbours"]) >= 0.98
    assert abs(precision(approx, articles) - precision(exact, articles)) <= 0.005
    again = fit_parts(hidden, grouped)
    np.testing.assert_array_equal(approx.arrays["neighbours"], again.arrays["neighbours"])


def test_one_article_and_no_semantic_view(tmp_path):
    one = read_corpus(write_jsonl(tmp_path / "one.jsonl", [TINY[0]])).articles
    parts = fit_parts(one, TrainOptions(approximate=True, min_df=1, max_df=1.0), allow_empty=True)
    assert np.all(parts.arrays["neighbours"] == -1)
    # Without the semantic view the groups still work (they come from the TF-IDF rows).
    articles = read_corpus(DEMO_CORPUS).articles
    options = TrainOptions(approximate=True, approximate_group_size=4, approximate_spread=1, min_df=1, n_jobs=1)
    plain = fit_parts(articles, dataclasses.replace(options, semantic_weight=0.0))
    assert plain.arrays["lsa_augmented"].shape[1] == 0
    check_lists(plain)
    no_components = fit_parts(articles, dataclasses.replace(options, semantic_components=0))
    np.testing.assert_array_equal(no_components.arrays["neighbours"], plain.arrays["neighbours"])
    exact = fit_parts(articles, dataclasses.replace(options, semantic_weight=0.0, approximate=False))
    assert recall_at(exact.arrays["neighbours"], plain.arrays["neighbours"]) >= 0.9


def test_evaluate_approximate_through_the_cli(tmp_path, capsys):
    code = main(
        ["evaluate", "--corpus", str(DEMO_CORPUS), "--approximate", "--no-baseline", "--quiet", "--out", str(tmp_path)]
    )
    assert code == 0
    assert "P@10" in capsys.readouterr().out
