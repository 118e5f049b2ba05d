"""Recommender.fit: in memory, the same answers as a saved and loaded model; degenerate corpora refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from recommender import Recommender, TrainOptions, read_corpus
from recommender.errors import InvalidInputError
from recommender.fit import title_key, url_key

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


def test_same_title_or_canonical_url_count_as_duplicates(tmp_path: Path) -> None:
    records = [dict(r) for r in TINY]
    # Different wording (cosine well below the 0.9 threshold), one headline.
    records.append({**records[1], "id": "f2-again", "title": "Striker scores TWICE, as United top the league!"})
    records[1]["body"] = "A report on the league: " + records[1]["body"]
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
    group = {article_id: int(rec.dup_group[rec.index_for(article_id)]) for article_id in rec.ids}
    assert group["f2"] == group["f2-again"] and group["f3"] == group["f3-copy"]
    assert len({group["f1"], group["f2"], group["f3"], group["f4"]}) == 4
    box = [item.id for item in rec.related("f1", 10).items]
    assert len({"f2", "f2-again"} & set(box)) == 1 and len({"f3", "f3-copy"} & set(box)) == 1
    assert rec.related("f1", 10).collapsed >= 2


def test_title_and_url_keys() -> None:
    assert title_key("Brown names 16 March for Budget") == title_key("  brown names 16 march, for budget.")
    assert title_key("!!!") == ""
    assert url_key("https://A.example/x/?utm_medium=rss&id=3#c") == url_key("https://a.example/x?id=3")
    assert url_key("https://a.example/x?id=3") != url_key("https://a.example/x?id=4")
    # Non-web schemes say nothing about the page: never a duplicate key.
    assert url_key("javascript:alert(1)") == "" and url_key("mailto:a@b.example") == "" and url_key(None) == ""
