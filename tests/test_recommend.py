from __future__ import annotations

from pathlib import Path

import pytest

from recommender.errors import InvalidInputError, UnknownArticleError
from recommender.recommend import Filters, Recommender
from recommender.train import train

from .conftest import TINY, write_jsonl


@pytest.fixture
def rec(tiny_models: Path) -> Recommender:
    return Recommender.load(tiny_models)


def test_related_by_id_stays_in_topic_sorted_without_self(rec: Recommender) -> None:
    result = rec.related("f1", limit=3)
    assert result.source_id == "f1" and result.model_version == rec.version
    ids = [i.id for i in result.items]
    assert len(ids) == 3 and "f1" not in ids
    assert all(i.startswith("f") for i in ids)
    scores = [i.score for i in result.items]
    assert scores == sorted(scores, reverse=True)
    assert all(s >= rec.min_similarity for s in scores)


def test_unrelated_article_gets_an_empty_list_not_noise(rec: Recommender) -> None:
    assert rec.related("x1", limit=5).items == []


def test_related_to_text(rec: Recommender) -> None:
    result = rec.related_to_text("Comet watch", "The telescope at the observatory tracks the comet.", limit=2)
    assert [i.id[0] for i in result.items] == ["s", "s"]
    assert result.source_id is None
    assert rec.related_to_text("", "").items == []
    assert rec.related_to_text("zzzz", "qqqq xxxx").items == []


def test_filters_fall_back_to_on_demand_search(rec: Recommender) -> None:
    # b1's precomputed list holds business articles; a science filter must
    # still find the science articles that share a word with it, on demand.
    plain = [i.id for i in rec.related("b1", limit=10).items]
    only_science = rec.related("b1", limit=10, filters=Filters.build(section="science"))
    assert all(i.id.startswith("s") for i in only_science.items)
    excluded = rec.related("b1", limit=10, filters=Filters.build(exclude=[plain[0]]))
    assert plain[0] not in [i.id for i in excluded.items]
    assert [i.id for i in excluded.items][: len(plain) - 1] == plain[1:]
    tagged = rec.related("f1", limit=5, filters=Filters.build(tags=["tickets"]))
    assert [i.id for i in tagged.items] == ["f3"]
    dated = rec.related("f1", limit=5, filters=Filters.build(published_after="2026-03-01"))
    assert {i.id for i in dated.items} <= {"f3", "f4"}
    assert rec.related("f1", filters=Filters.build(section="no-such-section")).items == []


def test_limit_unknown_id_and_bad_dates(rec: Recommender) -> None:
    with pytest.raises(InvalidInputError) as info:
        rec.related("f1", limit=0)
    assert str(info.value) == "limit must be an integer in [1, 100], got 0"
    with pytest.raises(UnknownArticleError) as missing:
        rec.related("nope")
    assert str(missing.value) == "unknown article id 'nope'"
    assert isinstance(missing.value, KeyError)
    with pytest.raises(InvalidInputError, match="published_after must be an ISO 8601 date or datetime, got 'soon'"):
        Filters.build(published_after="soon")


def test_near_duplicates_are_collapsed(tmp_path: Path, tiny_options) -> None:
    records = [dict(r) for r in TINY]
    # A syndicated copy of f2 with a reworded headline, and an exact re-post of f3.
    records.append({**records[1], "id": "f2-copy", "title": "United striker scores twice, top the league"})
    records.append({**records[2], "id": "f3-repost"})
    corpus = write_jsonl(tmp_path / "dups.jsonl", records)
    train([corpus], tmp_path / "m", tiny_options)
    rec = Recommender.load(tmp_path / "m")
    result = rec.related("f1", limit=5)
    ids = [i.id for i in result.items]
    assert not ({"f2", "f2-copy"} <= set(ids)) and not ({"f3", "f3-repost"} <= set(ids))
    assert result.collapsed >= 2
    assert "f3-repost" not in [i.id for i in rec.related("f3", limit=5).items]
    assert "f2" not in [i.id for i in rec.related("f2-copy", limit=5).items]
