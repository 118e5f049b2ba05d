from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from recommender.errors import InvalidInputError, NotFittedError
from recommender.tfidf import TOKEN_PATTERN, TfidfModel

from .conftest import TINY

TITLES = [r["title"] for r in TINY]
BODIES = [r["body"] for r in TINY]


def test_init_stores_parameters_and_fit_returns_self() -> None:
    model = TfidfModel(title_weight=3.0, min_df=1, max_df=0.9)
    assert (model.title_weight, model.min_df, model.max_df) == (3.0, 1, 0.9)
    assert not hasattr(model, "vocabulary_")
    assert model.fit(TITLES, BODIES) is model
    assert model.matrix_.shape == (len(TINY), len(model.vocabulary_))


def test_matches_scikit_learn_when_title_counts_once() -> None:
    # With title_weight 1 the model is TfidfVectorizer over "title body".
    ours = TfidfModel(title_weight=1.0, min_df=1, max_df=1.0, n_jobs=1).fit(TITLES, BODIES)
    ref = TfidfVectorizer(sublinear_tf=True, stop_words="english", token_pattern=TOKEN_PATTERN, dtype=np.float64)
    expected = ref.fit_transform([t + " " + b for t, b in zip(TITLES, BODIES, strict=True)])
    assert ours.terms_ == ref.get_feature_names_out().tolist()
    np.testing.assert_allclose(ours.matrix_.toarray(), expected.toarray(), atol=1e-6)


def test_title_weight_raises_title_terms() -> None:
    light = TfidfModel(title_weight=1.0, min_df=1, max_df=1.0).fit(TITLES, BODIES)
    heavy = TfidfModel(title_weight=3.0, min_df=1, max_df=1.0).fit(TITLES, BODIES)
    col = light.vocabulary_["recipe"]
    assert heavy.matrix_[12, col] > light.matrix_[12, col]


def test_rows_are_unit_length_and_transform_one_matches_transform() -> None:
    model = TfidfModel(min_df=1, max_df=1.0).fit(TITLES, BODIES)
    norms = np.sqrt(model.matrix_.multiply(model.matrix_).sum(axis=1)).A.ravel()
    np.testing.assert_allclose(norms, 1.0, rtol=1e-6)
    cols, weights = model.transform_one("Comet over the observatory", "A comet and a comet tail, seen by astronomers.")
    dense = model.transform(
        ["Comet over the observatory"], ["A comet and a comet tail, seen by astronomers."]
    ).toarray()[0]
    np.testing.assert_allclose(dense[cols], weights, rtol=1e-6)
    assert np.count_nonzero(dense) == cols.size
    np.testing.assert_allclose(model.matrix_.toarray(), model.transform(TITLES, BODIES).toarray(), atol=1e-6)


def test_empty_and_unknown_text_give_empty_vectors() -> None:
    model = TfidfModel(min_df=1, max_df=1.0).fit(TITLES, BODIES)
    for title, body in (("", ""), ("zzz qqq", "the and of"), ("   ", "12345")):
        cols, weights = model.transform_one(title, body)
        assert cols.size == 0 and weights.size == 0


def test_parallel_fit_equals_serial_fit() -> None:
    titles = [f"{t} {i}" for i in range(400) for t in TITLES][:5000]
    bodies = [b for _ in range(400) for b in BODIES][:5000]
    serial = TfidfModel(n_jobs=1).fit(titles, bodies)
    parallel = TfidfModel(n_jobs=2).fit(titles, bodies)
    assert serial.terms_ == parallel.terms_
    assert (serial.matrix_ != parallel.matrix_).nnz == 0


def test_validation_and_not_fitted_errors() -> None:
    with pytest.raises(NotFittedError, match="not fitted yet"):
        TfidfModel().transform_one("a", "b")
    with pytest.raises(InvalidInputError, match=r"min_df must be an integer >= 1, got 0"):
        TfidfModel(min_df=0).fit(TITLES, BODIES)
    with pytest.raises(InvalidInputError, match=r"max_df must be a fraction in \(0, 1\], got 2"):
        TfidfModel(max_df=2).fit(TITLES, BODIES)
    with pytest.raises(InvalidInputError, match="cannot fit on an empty corpus"):
        TfidfModel().fit([], [])


@settings(max_examples=60, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(
            ["a", "bc", "XYZ", " ", "é", "ü19", ".", ",", "'", "-", "_", "\n", "the ", "and ", "über ", "naïve "]
        ),
        max_size=60,
    ).map("".join),
    ngram_max=st.integers(1, 3),
)
def test_lean_analyzer_matches_scikit_learn(text: str, ngram_max: int) -> None:
    model = TfidfModel(min_df=1, max_df=1.0, ngram_range=(1, ngram_max)).fit(TITLES, BODIES)
    lean = model.build_analyzer()
    reference = CountVectorizer(
        stop_words="english", ngram_range=(1, ngram_max), token_pattern=TOKEN_PATTERN
    ).build_analyzer()
    assert lean(text) == reference(text)
    for record in TINY:
        assert lean(record["body"]) == reference(record["body"])
