"""Folding an article into a fitted model: its own box and the boxes it enters, as a draft's and a list's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from recommender import Recommender, TrainOptions, read_corpus
from recommender.foldin import fold_in


def test_a_folded_article_gets_the_draft_box_and_enters_the_lists_it_beats(tiny_corpus: Path) -> None:
    articles = read_corpus(tiny_corpus).articles
    options = TrainOptions(k=5, min_df=1, max_df=1.0, min_similarity=0.01, n_jobs=1)
    rec = Recommender.fit(articles[1:], options)
    new = articles[0]  # "United win the cup final": football
    folded = fold_in(rec, new)
    draft = rec.related_to_text(new.title, new.body, 5)
    assert [rec.ids[row] for row, _ in folded.box] == [item.id for item in draft.items]
    np.testing.assert_allclose([s for _, s in folded.box], [item.score for item in draft.items], atol=1e-6)
    entered = {rec.ids[row]: score for row, score in folded.enters}
    assert {"f2", "f3"} <= set(entered)
    for article_id, score in entered.items():
        row = rec.index_for(article_id)
        last = float(rec.neighbour_scores[row, -1])
        assert rec.neighbours[row, -1] < 0 or score > last, article_id
    # Articles of other topics share no word with it: it enters none of their lists.
    assert not {"b1", "b2", "s1", "s2"} & set(entered)


def test_an_edited_article_leaves_its_former_version_out(tiny_corpus: Path) -> None:
    articles = read_corpus(tiny_corpus).articles
    rec = Recommender.fit(articles, TrainOptions(k=5, min_df=1, max_df=1.0, min_similarity=0.01, n_jobs=1))
    edited = dataclasses.replace(articles[0], body=articles[0].body + " The final was sold out.")
    former = rec.index_for(edited.id)
    folded = fold_in(rec, edited, exclude=np.array([former]))
    assert former not in {row for row, _ in folded.box} and former not in {row for row, _ in folded.enters}
    assert folded.language == "en" and folded.semantic.shape == (rec.semantic.vectors.shape[1],)


def test_a_text_without_known_words_folds_to_nothing(tiny_corpus: Path) -> None:
    articles = read_corpus(tiny_corpus).articles
    rec = Recommender.fit(articles, TrainOptions(k=5, min_df=1, max_df=1.0, min_similarity=0.01, n_jobs=1))
    folded = fold_in(rec, dataclasses.replace(articles[0], id="zz", title="Xyzzy", body="plugh"))
    assert folded.box == [] and folded.enters == [] and folded.columns.size == 0
