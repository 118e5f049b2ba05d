"""Recommender.fit: in memory, the same answers as a saved and loaded model; degenerate corpora refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recommender import Recommender, TrainOptions, read_corpus
from recommender.errors import InvalidInputError
from recommender.fit import SAME_TITLE_SIMILARITY, duplicate_groups, title_key, url_key

from .conftest import TINY, write_jsonl


def test_fit_then_query_in_memory(tiny_corpus: Path, tiny_options: TrainOptions) -> None:
    rec = Recommender.fit(read_corpus(tiny_corpus), tiny_options)
    assert len(rec) == 13 and rec.parts.folder is None
    assert [item.id for item in rec.related("f1", limit=3).items] == ["f3", "f2", "f4"]
    draft = rec.related_to_text(title="Comet", body="the telescope saw the comet", limit=2)
    assert [item.id for item in draft.items][:1] == ["s3"] or [item.id for item in draft.items][:1] == ["s1"]
    assert all(item.id.startswith("s") for item in draft.items)


def test_save_and_load_keep_every_answer(tmp_path: Path, tiny_corpus: Path, tiny_options: TrainOptions) -> None:
    rec = Recommender.fit(read_corpus(tiny_corpus).articles, tiny_options)
    folder = rec.save(tmp_path / "models")
    loaded = Recommender.load(tmp_path / "models")
    assert folder == tmp_path / "models" / rec.version and loaded.version == rec.version
    for article_id in rec.ids:
        for fallback in (False, True):
            assert loaded.related(article_id, 10, fallback=fallback, explain=True) == rec.related(
                article_id, 10, fallback=fallback, explain=True
            )
    with pytest.raises(Exception, match="already exists"):
        rec.save(tmp_path / "models")


def test_a_corpus_without_vocabulary_is_refused_unless_allowed(tmp_path: Path) -> None:
    one = read_corpus(write_jsonl(tmp_path / "one.jsonl", [TINY[0]])).articles
    with pytest.raises(InvalidInputError) as info:
        Recommender.fit(one)
    assert str(info.value) == (
        "the model would be empty: no term of 1 article(s) is in at least min_df (1) and at most max_df (0.5) "
        "of them; add articles or allow an empty model (--allow-empty)"
    )
    rec = Recommender.fit(one, allow_empty=True)
    assert rec.related("f1").items == []
    assert rec.related_to_text(title="United", body="cup final").items == []


def test_a_corpus_where_no_article_has_a_neighbour_is_refused(tmp_path: Path) -> None:
    records = [
        {"id": "a", "title": "Alpha cup"},
        {"id": "b", "title": "Beta final"},
        {"id": "c", "title": "Gamma match"},
    ]
    articles = read_corpus(write_jsonl(tmp_path / "apart.jsonl", records)).articles
    options = TrainOptions(min_df=1, n_jobs=1)
    with pytest.raises(
        InvalidInputError, match=r"none of the 3 article\(s\) has a neighbour above the minimum similarity"
    ):
        Recommender.fit(articles, options)
    assert Recommender.fit(articles, options, allow_empty=True).related("a").items == []


def test_cli_refuses_a_degenerate_model_and_writes_nothing(tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "one.jsonl", [TINY[0]])
    models = tmp_path / "models"
    command = [sys.executable, "-m", "recommender", "train", "--corpus", str(corpus), "--models-dir", str(models)]
    refused = subprocess.run([*command, "--quiet"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1
    assert refused.stderr.startswith("recommender: error: the model would be empty: no term of 1 article(s)")
    assert "Traceback" not in refused.stderr
    assert not models.exists() or not any(p for p in models.iterdir() if not p.name.startswith("."))
    allowed = subprocess.run([*command, "--quiet", "--allow-empty"], capture_output=True, text=True, timeout=120)
    assert allowed.returncode == 0, allowed.stderr
    assert (models / "current").is_symlink()


def test_same_headline_and_similar_text_make_a_near_duplicate_group() -> None:
    # Rows 0-1: one headline at cosine 0.87 (the same story told twice): one group.
    # Rows 2-3: one headline at cosine 0.3 (replies of a forum thread): apart.
    # Rows 4-5: different headlines at 0.87: apart; rows 6-7: cosine 0.95: one group.
    indices = np.array([[1], [0], [3], [2], [5], [4], [7], [6]], dtype=np.int32)
    scores = np.array([[0.87], [0.87], [0.3], [0.3], [0.87], [0.87], [0.95], [0.95]], dtype=np.float32)
    titles = ["brown names 16 march for budget"] * 2 + ["re graphics cards"] * 2 + ["a", "b", "c", "d"]
    groups = duplicate_groups(indices, scores, 0.9, titles)
    assert groups[0] == groups[1] and groups[2] != groups[3] and groups[4] != groups[5] and groups[6] == groups[7]
    assert len(set(groups.tolist())) == 6
    assert SAME_TITLE_SIMILARITY < 0.87


def test_one_canonical_url_stands_once_in_a_box(tmp_path: Path) -> None:
    records = [dict(r) for r in TINY]
    # Another wording of f3, at f3's canonical URL (tracking parameters and fragment aside).
    records[2]["url"] = "https://news.example/sport/cup-final-tickets/"
    records.append(
        {
            "id": "f3-copy",
            "title": "Tickets gone for the final",
            "body": "Every cup final ticket was bought by football fans of United and City within hours.",
            "url": "https://NEWS.example/sport/cup-final-tickets?utm_source=feed#top",
            "section": "sport",
        }
    )
    options = TrainOptions(k=10, min_df=1, max_df=1.0, min_similarity=0.01, n_jobs=1)
    rec = Recommender.fit(read_corpus(write_jsonl(tmp_path / "dups.jsonl", records)), options)
    url_group = rec.parts.arrays["url_group"]
    assert url_group[rec.index_for("f3")] == url_group[rec.index_for("f3-copy")] >= 0
    assert url_group[rec.index_for("f1")] == -1
    for source in ("f1", "f4", "b1"):
        box = [item.id for item in rec.related(source, 10, fallback=True).items]
        assert len({"f3", "f3-copy"} & set(box)) <= 1, box
    result = rec.related("f1", 10)
    assert len({"f3", "f3-copy"} & {item.id for item in result.items}) == 1 and result.collapsed >= 1


def test_title_and_url_keys() -> None:
    assert title_key("Brown names 16 March for Budget") == title_key("  brown names 16 march, for budget.")
    assert title_key("!!!") == ""
    assert url_key("https://A.example/x/?utm_medium=rss&id=3#c") == url_key("https://a.example/x?id=3")
    assert url_key("https://a.example/x?id=3") != url_key("https://a.example/x?id=4")
    # Non-web schemes say nothing about the page: never a duplicate key.
    assert url_key("javascript:alert(1)") == "" and url_key("mailto:a@b.example") == "" and url_key(None) == ""


def test_a_reply_subject_is_no_headline() -> None:
    from recommender.fit import headline_key

    assert (
        headline_key("Re: Graphics cards") == "" and headline_key("AW: Frage") == "" and headline_key("Fwd: memo") == ""
    )
    assert headline_key("Brown names 16 March for Budget") == title_key("brown names 16 march for budget")
    assert headline_key("Regional news: rain") == "regional news rain"
