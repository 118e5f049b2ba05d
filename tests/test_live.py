"""The live index in memory: upserts and deletes applied to a loaded model, in log order."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recommender import Recommender, TrainOptions, read_corpus
from recommender.changelog import Change, ChangeLog
from recommender.corpus import parse_record
from recommender.errors import InvalidInputError, UnknownArticleError
from recommender.evaluate import hide_labels
from recommender.values import SCORE_TOLERANCE, Filters

from .conftest import TINY, shared_corpus

OPTIONS = TrainOptions(k=5, min_df=1, max_df=1.0, min_similarity=0.01, n_jobs=1)

GOALKEEPER = {
    "id": "f5",
    "title": "Goalkeeper saves penalty as United reach the cup final",
    "body": "United's new goalkeeper saved a penalty and the football club reached the cup final.",
    "section": "sport",
    "tags": ["football", "cup"],
    "published_at": "2026-06-01",
}


def model(records: list[dict[str, Any]] | None = None) -> Recommender:
    return Recommender.fit([parse_record(r) for r in (records or TINY)], OPTIONS)


def changes(*ops: tuple[str, str, dict[str, Any] | None], start: int = 1) -> list[Change]:
    return [Change(start + i, op, article_id, record, 0.0) for i, (op, article_id, record) in enumerate(ops)]


def ids(result: Any) -> list[str]:
    return [item.id for item in result.items]


def every_box(rec: Recommender) -> dict[str, list[str]]:
    return {article_id: ids(rec.related(article_id, 5)) for article_id in list(rec.index_of)}


def test_an_upserted_article_gets_a_box_and_enters_the_boxes_of_its_neighbours() -> None:
    rec = model()
    base = rec.version
    applied = rec.apply(changes(("upsert", "f5", GOALKEEPER)))
    assert [(a.seq, a.op, a.article_id, a.created) for a in applied] == [(1, "upsert", "f5", True)]
    assert "f5" in rec and len(rec) == len(TINY) + 1
    assert rec.version == f"{base}+1" and rec.base_version == base and rec.log_seq == 1
    own = ids(rec.related("f5", 5))
    assert set(own[:4]) == {"f1", "f2", "f3", "f4"}
    # The football articles it is closest to now list it.
    assert any("f5" in ids(rec.related(f, 5)) for f in ("f1", "f2", "f3"))
    assert not any("f5" in ids(rec.related(b, 5)) for b in ("b1", "b2", "s1", "x1"))
    assert rec.article("f5")["title"] == GOALKEEPER["title"]
    # Free text finds it too.
    assert "f5" in ids(rec.related_to_text("goalkeeper penalty", "", 5))


def test_a_new_article_box_is_the_box_a_retrain_gives_it_on_the_tiny_corpus() -> None:
    rec = model()
    rec.apply(changes(("upsert", "f5", GOALKEEPER)))
    retrained = model([*TINY, GOALKEEPER])
    # Same vocabulary is not guaranteed (min_df 1 adds the new words), so compare the lists' members.
    assert ids(rec.related("f5", 3)) == ids(retrained.related("f5", 3))


def test_an_edit_replaces_the_article_everywhere() -> None:
    rec = model()
    edited = {**TINY[0], "title": "Comet tail seen again", "body": "The comet tail was measured by the observatory."}
    applied = rec.apply(changes(("upsert", "f1", edited)))
    assert applied[0].existed and not applied[0].created
    assert len(rec) == len(TINY)
    assert rec.article("f1")["title"] == "Comet tail seen again"
    own = ids(rec.related("f1", 3))
    assert own and set(own) <= {"s1", "s2", "s3", "s4"}
    # Its football neighbours lost it (the old text is gone), the comet articles took it in.
    assert all("f1" not in ids(rec.related(f, 5)) for f in ("f2", "f3"))
    assert "f1" in ids(rec.related("s3", 5))
    assert rec.drift()["edited"] == 1 and rec.drift()["added"] == 0


def test_a_deleted_article_leaves_every_box_and_the_boxes_refill() -> None:
    rec = model()
    before = every_box(rec)
    holders = [a for a, box in before.items() if "f2" in box]
    assert holders
    applied = rec.apply(changes(("delete", "f2", None)))
    assert applied[0].existed
    assert "f2" not in rec and len(rec) == len(TINY) - 1
    with pytest.raises(UnknownArticleError):
        rec.related("f2")
    after = every_box(rec)
    assert all("f2" not in box for box in after.values())
    for holder in holders:
        # The next candidates move up: the box keeps its length when there are enough.
        assert len(after[holder]) >= min(len(before[holder]), len(rec) - 1) - 1
        assert [a for a in before[holder] if a != "f2"] == after[holder][: len(before[holder]) - 1]
    assert "f2" not in ids(rec.related_to_text("striker league", "", 10))
    assert "f2" not in ids(rec.related("f1", 10, fallback=True))
    assert rec.drift()["deleted"] == 1


def test_deleting_an_unknown_id_changes_nothing_but_the_position() -> None:
    rec = model()
    applied = rec.apply(changes(("delete", "nope", None)))
    assert not applied[0].existed and rec.log_seq == 1 and len(rec) == len(TINY)


def test_changes_are_applied_once_and_in_order() -> None:
    rec = model()
    log = changes(("upsert", "f5", GOALKEEPER), ("delete", "f5", None), ("upsert", "f5", GOALKEEPER))
    rec.apply(log[:2])
    assert "f5" not in rec
    again = rec.apply(log)  # the first two are behind the model's position: skipped
    assert [a.seq for a in again] == [3] and "f5" in rec and rec.log_seq == 3


def test_one_change_at_a_time_and_all_at_once_give_the_same_model() -> None:
    extra = [
        GOALKEEPER,
        {"id": "s5", "title": "Comet returns", "body": "The comet returns to the night sky, says the observatory."},
        {"id": "b5", "title": "Battery prices fall", "body": "Battery and lithium prices fall as car sales climb."},
    ]
    log = changes(
        *[("upsert", r["id"], r) for r in extra], ("delete", "s1", None), ("upsert", "b1", {**TINY[4], "body": "x y"})
    )
    one, many = model(), model()
    for change in log:
        one.apply([change])
    many.apply(log)
    assert every_box(one) == every_box(many)
    for article_id in one.index_of:
        a, b = one.related(article_id, 5), many.related(article_id, 5)
        np.testing.assert_allclose([i.score for i in a.items], [i.score for i in b.items], atol=SCORE_TOLERANCE)


def test_a_copy_of_an_article_is_its_near_duplicate() -> None:
    rec = model()
    rec.apply(changes(("upsert", "copy", {**TINY[1], "id": "copy"})))
    assert "f2" not in ids(rec.related("copy", 5)) and "copy" not in ids(rec.related("f2", 5))
    # A third football article lists one of the two, not both.
    assert len({"f2", "copy"} & set(ids(rec.related("f1", 5)))) == 1


def test_filters_and_fallback_see_live_articles() -> None:
    rec = model()
    rec.apply(
        changes(("upsert", "f5", GOALKEEPER), ("upsert", "g1", {"id": "g1", "title": "Garden", "section": "home"}))
    )
    assert ids(rec.related("f1", 5, Filters.build(tags=["cup"]))) == ["f5"]
    assert ids(rec.related("f1", 5, Filters.build(published_after="2026-05-15"))) == ["f5"]
    # A new section: the fallback of an article of that section lists nothing of another.
    result = rec.related("g1", 3, fallback=True)
    assert result.items == [] or all(i.fallback for i in result.items)
    assert ids(rec.related("f4", 10, Filters.build(section="home"), fallback=True)) == ["g1"]


def test_the_bundle_boilerplate_is_stripped_from_live_articles(tmp_path: Path) -> None:
    footer = "Subscribe to our newsletter for more stories every morning."
    records = [{**r, "body": f"{r.get('body', '')} {footer}"} for r in TINY] * 1
    rec = Recommender.fit([parse_record(r) for r in records], TrainOptions(**{**OPTIONS.parameters(), "k": 5}))
    if not rec.manifest["boilerplate"]:
        pytest.skip("the tiny corpus is too small for boilerplate detection")
    rec.apply(changes(("upsert", "f5", {**GOALKEEPER, "body": GOALKEEPER["body"] + " " + footer})))
    assert footer not in (rec.article("f5")["excerpt"] or "")


def test_an_article_of_unknown_words_gets_an_empty_box_and_drift_counts_them() -> None:
    rec = model()
    rec.apply(changes(("upsert", "zz", {"id": "zz", "title": "Xyzzy plugh", "body": "Frobnicate quux."})))
    assert rec.related("zz", 5).items == []
    drift = rec.drift()
    assert drift["added"] == 1 and drift["unknown_token_share"] == 1.0
    assert drift["log_seq"] == 1 and drift["base_version"] == rec.base_version


def test_a_damaged_log_record_is_skipped_and_the_position_moves_on(caplog: pytest.LogCaptureFixture) -> None:
    rec = model()
    rec.apply(changes(("upsert", "bad", {"id": "bad", "title": 5}), ("upsert", "f5", GOALKEEPER)))
    assert "bad" not in rec and "f5" in rec and rec.log_seq == 2
    assert "change 1 (bad) not applied" in caplog.text


def test_a_model_with_live_changes_is_not_saved_as_a_bundle(tmp_path: Path) -> None:
    rec = model()
    rec.apply(changes(("upsert", "f5", GOALKEEPER)))
    with pytest.raises(InvalidInputError, match="holds live changes"):
        rec.save(tmp_path / "models")
    assert not (tmp_path / "models").exists()


def test_load_replays_the_log_of_the_models_dir(tmp_path: Path) -> None:
    models = tmp_path / "models"
    rec = model()
    rec.save(models)
    with ChangeLog(models) as log:
        log.append("upsert", "f5", GOALKEEPER)
        log.append("delete", "s1")
    loaded = Recommender.load(models)
    assert loaded.version == f"{rec.version}+2" and "f5" in loaded and "s1" not in loaded
    rec.apply(changes(("upsert", "f5", GOALKEEPER), ("delete", "s1", None)))
    assert every_box(loaded) == every_box(rec)
    plain = Recommender.load(models, replay=False)
    assert plain.version == rec.base_version and "f5" not in plain


@pytest.mark.corpora
def test_bbc_live_upserts_agree_with_a_retrain() -> None:
    """BBC News: 90 % trained, the other 10 % upserted one by one; boxes against a full retrain."""
    articles = [hide_labels(a) for a in read_corpus(shared_corpus("bbc-news.jsonl.gz")).articles]
    order = list(range(len(articles)))
    random.Random(7).shuffle(order)
    held = {articles[i].id for i in order[: len(articles) // 10]}
    options = TrainOptions(n_jobs=2)
    rec = Recommender.fit([a for a in articles if a.id not in held], options)
    full = Recommender.fit(articles, options)
    from recommender.corpus import article_record

    rec.apply(
        Change(seq, "upsert", a.id, article_record(a), 0.0)
        for seq, a in enumerate((a for a in articles if a.id in held), start=1)
    )
    recall = []
    for article_id in full.index_of:
        truth = ids(full.related(article_id, 10))
        if truth:
            recall.append(len(set(truth) & set(ids(rec.related(article_id, 10)))) / len(truth))
    # The figures (0.90 and 0.95) are for 20 Newsgroups, measured over HTTP by the
    # live benchmark; BBC News is smaller, so a tenth held out moves its retrain more.
    assert float(np.mean(recall)) >= 0.88, np.mean(recall)
    # Every upserted article is in its own neighbours' lists where the retrain puts it there.
    pairs = found = 0
    for new in held:
        for neighbour in ids(rec.related(new, 10)):
            if neighbour not in held and new in ids(full.related(neighbour, 10)):
                pairs += 1
                found += new in ids(rec.related(neighbour, 10))
    assert pairs and found / pairs >= 0.93, (found, pairs)


def test_export_orphans_and_the_demo_page_list_the_articles_served() -> None:
    import io

    from recommender.api.pages import demo_page
    from recommender.export import export_related
    from recommender.orphans import find_orphans

    rec = model()
    rec.apply(
        changes(
            ("upsert", "f5", GOALKEEPER),
            ("upsert", "f1", {**TINY[0], "body": TINY[0]["body"] + " The final was sold out."}),
            ("delete", "f2", None),
            ("upsert", "lone", {"id": "lone", "title": "Xyzzy plugh"}),
        )
    )
    out = io.StringIO()
    assert export_related(rec, out, 5) == len(rec) == len(TINY) + 1
    exported = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(e["id"] for e in exported) == sorted(rec.index_of)
    assert all("f2" not in [i["id"] for i in e["related"]] for e in exported)
    orphans = {o.id: o for o in find_orphans(rec, min_items=1)}
    assert "lone" in orphans and "f2" not in orphans and orphans["lone"].items == 0
    page = demo_page(rec, None)
    assert 'value="f2"' not in page and 'value="f5"' in page
