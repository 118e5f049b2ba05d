"""train --approximate: candidates from an HNSW index and rare terms, re-scored exactly."""

from __future__ import annotations

import builtins
import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from benchmarks.approximate import precision, recall_at
from recommender.approximate import MissingExtraError, best_candidates, nearest_by_vector, rare_term_candidates
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


def test_tiny_corpus_lists_are_valid_and_stored(tmp_path, tiny_options):
    articles = read_corpus(write_jsonl(tmp_path / "tiny.jsonl", TINY)).articles
    options = dataclasses.replace(tiny_options, approximate=True, approximate_candidates=4)
    parts = fit_parts(articles, options)
    check_lists(parts)
    assert parts.manifest["parameters"]["approximate"] is True
    assert parts.manifest["parameters"]["approximate_candidates"] == 4
    rec = Recommender.fit(articles, options)
    rec.save(tmp_path / "models")
    loaded = Recommender.load(tmp_path / "models")
    assert [i.id for i in loaded.related("f1", 3).items] == [i.id for i in rec.related("f1", 3).items]


def test_demo_corpus_uses_the_index_and_is_deterministic():
    articles = read_corpus(DEMO_CORPUS).articles
    options = TrainOptions(approximate=True, approximate_candidates=8, min_df=1, n_jobs=1)
    one, two = fit_parts(articles, options), fit_parts(articles, dataclasses.replace(options, n_jobs=2))
    check_lists(one)
    # Same lists whatever the thread count (the graph is built on one thread, pairs are scored alone).
    for name in ("neighbours", "neighbour_scores", "candidate_floor", "dup_group", "lsa_augmented"):
        np.testing.assert_array_equal(one.arrays[name], two.arrays[name])
    floor = one.arrays["candidate_floor"]
    assert np.all((floor >= 0) & (floor < 1))


def test_nearest_by_vector_finds_the_nearest_and_never_self():
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((500, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    found = nearest_by_vector(vectors, 10)
    assert found.shape == (500, 10)
    assert not np.any(found == np.arange(500)[:, None])
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    exact = np.argsort(-sims, axis=1)[:, :10]
    assert recall_at(exact, found) >= 0.95


def test_rare_terms_and_best_candidates():
    x = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 0, 1], [0, 1, 1, 0], [0, 0, 1, 1]], dtype=np.float64) / np.sqrt(2))
    rare = rare_term_candidates(x, 3, max_df=2)
    assert sorted(rare[0][rare[0] >= 0].tolist()) == [1, 2]
    assert not np.any(rare == np.arange(4)[:, None])
    best = best_candidates(x, np.array([[1, 1, 0, 3]] * 4), 2, np.arange(4), 0.0)
    # Row 0: self dropped, 1 counted once, 3 shares nothing.
    assert best.indices[0].tolist() == [1, -1]
    np.testing.assert_allclose(best.scores[0], [0.5, 0.0])


def test_options_are_validated():
    with pytest.raises(InvalidInputError, match=r"approximate must be true or false, got 1"):
        TrainOptions(approximate=1).validate()  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"approximate_candidates must be an integer in \[1, 10000\], got 0"):
        TrainOptions(approximate_candidates=0).validate()
    with pytest.raises(InvalidInputError, match=r"approximate needs semantic_components >= 2"):
        TrainOptions(approximate=True, semantic_components=0).validate()
    assert TrainOptions.from_parameters({"approximate": True}).approximate is True


def test_without_the_extra_the_error_names_it(monkeypatch, tmp_path, capsys):
    real_import = builtins.__import__

    def no_hnswlib(name, *args, **kwargs):
        if name == "hnswlib":
            raise ImportError("No module named 'hnswlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_hnswlib)
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
    approx = fit_parts(hidden, TrainOptions(approximate=True))
    check_lists(approx, sample=200)
    assert approx.manifest["parameters"]["approximate"] is True
    # Measured 0.962 with the defaults (README, "Approximate mode").
    assert recall_at(exact.arrays["neighbours"], approx.arrays["neighbours"]) >= 0.95
    assert abs(precision(approx, articles) - precision(exact, articles)) <= 0.01
    again = fit_parts(hidden, TrainOptions(approximate=True))
    np.testing.assert_array_equal(approx.arrays["neighbours"], again.arrays["neighbours"])


def test_one_article_and_no_vectors(tmp_path):
    one = read_corpus(write_jsonl(tmp_path / "one.jsonl", [TINY[0]])).articles
    parts = fit_parts(one, TrainOptions(approximate=True, min_df=1, max_df=1.0), allow_empty=True)
    assert np.all(parts.arrays["neighbours"] == -1)
    assert nearest_by_vector(np.zeros((500, 0), np.float32), 10).shape == (500, 0)


def test_evaluate_approximate_through_the_cli(tmp_path, capsys):
    code = main(
        ["evaluate", "--corpus", str(DEMO_CORPUS), "--approximate", "--no-baseline", "--quiet", "--out", str(tmp_path)]
    )
    assert code == 0
    assert "P@10" in capsys.readouterr().out
