"""Checkpoints of the live index: restoring one gives the model that replaying the whole log gives."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from recommender import Recommender
from recommender.changelog import LOG_FILE, ChangeLog
from recommender.checkpoint import FOLDER, capture, checkpoint_due, newest, restore, write_checkpoint

from .conftest import TINY
from .test_live import GOALKEEPER, every_box, model

MORE = [
    GOALKEEPER,
    {"id": "s5", "title": "Comet returns", "body": "The comet returns to the night sky, says the observatory."},
    {
        "id": "b5",
        "title": "Battery prices fall",
        "body": "Battery and lithium prices fall as car sales climb.",
        "tags": ["cars", "new"],
    },
    {"id": "g1", "title": "Garden", "body": "Plant tomatoes in spring.", "section": "home", "language": "en"},
]


def log_changes(models: Path, start: int, stop: int) -> None:
    """Log a fixed stream of writes: the articles above, edits of trained ones, a delete."""
    stream = [("upsert", r["id"], r) for r in MORE]
    stream += [("upsert", "b1", {**TINY[4], "body": "Battery maker raises more funding for lithium cells."})]
    stream += [("delete", "s1", None), ("upsert", "s1", TINY[8]), ("delete", "g1", None)]
    with ChangeLog(models) as log:
        for op, article_id, record in stream[start:stop]:
            log.append(op, article_id, record)


def same_model(a: Recommender, b: Recommender) -> None:
    assert a.version == b.version and len(a) == len(b) and a.ids == b.ids
    assert every_box(a) == every_box(b)
    assert a.drift() == b.drift()
    live_a, live_b = a.live, b.live
    assert live_a is not None and live_b is not None
    for name in ("box_rows", "box_scores", "augmented", "norms", "floor", "tie_key", "section_codes"):
        np.testing.assert_array_equal(getattr(live_a, name).view, getattr(live_b, name).view, err_msg=name)
    assert live_a.dead == live_b.dead and a.facts.tags == b.facts.tags and a.facts.group_of == b.facts.group_of
    for text in ("comet tail", "battery funding", "tomatoes"):
        assert [i.id for i in a.related_to_text(text, "", 5).items] == [
            i.id for i in b.related_to_text(text, "", 5).items
        ]


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    model().save(folder)
    return folder


def test_a_restored_checkpoint_is_the_replayed_model_and_the_tail_is_replayed(models: Path) -> None:
    log_changes(models, 0, 6)
    first = Recommender.load(models)
    captured = capture(first)
    assert captured is not None
    written = write_checkpoint(captured, models)
    assert written is not None and written.name == f"{first.base_version}+6"
    fresh = Recommender.load(models, replay=False)
    with ChangeLog(models) as log:
        assert restore(fresh, written, log.log_id())
    assert fresh.log_seq == 6
    same_model(fresh, first)
    log_changes(models, 6, 8)
    replayed = Recommender.load(models, replay=False)
    with ChangeLog(models) as log:
        replayed.catch_up(log)
    restored = Recommender.load(models)
    assert restored.log_seq == 8
    same_model(restored, replayed)
    # Both go on applying the same way.
    log_changes(models, 0, 2)
    with ChangeLog(models) as log:
        replayed.catch_up(log)
        restored.catch_up(log)
    same_model(restored, replayed)


def test_a_damaged_checkpoint_is_not_used(models: Path, caplog: pytest.LogCaptureFixture) -> None:
    log_changes(models, 0, 8)
    captured = capture(Recommender.load(models))
    assert captured is not None
    written = write_checkpoint(captured, models)
    assert written is not None
    data = bytearray((written / "arrays.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (written / "arrays.npz").write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="recommender.live"):
        loaded = Recommender.load(models)
    assert "not used (the whole log is replayed): arrays.npz does not match its checksum" in caplog.text
    same_model(loaded, _replayed(models))


def test_a_checkpoint_of_another_log_is_not_used(models: Path, caplog: pytest.LogCaptureFixture) -> None:
    log_changes(models, 0, 8)
    captured = capture(Recommender.load(models))
    assert captured is not None and write_checkpoint(captured, models) is not None
    # The log is deleted and written again: the same positions hold other changes.
    (models / LOG_FILE).unlink()
    log_changes(models, 0, 8)
    with ChangeLog(models) as log:
        log.append("delete", "f1")
    with caplog.at_level(logging.WARNING, logger="recommender.live"):
        loaded = Recommender.load(models)
    assert "written for another change log" in caplog.text
    assert "f1" not in loaded
    same_model(loaded, _replayed(models))


def test_checkpoints_are_due_every_n_changes_and_older_ones_go(models: Path) -> None:
    log_changes(models, 0, 3)
    rec = Recommender.load(models)
    assert checkpoint_due(rec, models, 3) and not checkpoint_due(rec, models, 4) and not checkpoint_due(rec, models, 0)
    captured = capture(rec)
    assert captured is not None and write_checkpoint(captured, models) is not None
    assert not checkpoint_due(rec, models, 3)
    log_changes(models, 3, 8)
    rec = Recommender.load(models)
    captured = capture(rec)
    assert captured is not None and write_checkpoint(captured, models) is not None
    assert [p.name for p in (models / FOLDER).iterdir() if not p.name.startswith(".")] == [f"{rec.base_version}+8"]
    assert newest(models, rec.base_version, 7) is None  # a checkpoint past the log's end is never used
    assert capture(Recommender.load(models, replay=False)) is None  # nothing live: nothing to save


def _replayed(models: Path) -> Recommender:
    rec = Recommender.load(models, replay=False)
    with ChangeLog(models) as log:
        rec.catch_up(log)
    return rec
