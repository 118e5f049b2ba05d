"""Compaction: the change log folded into a refit bundle, exactly as a training on the merged records."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recommender.bundle import current_version, list_versions, load_bundle, log_seq, read_records, resolve
from recommender.changelog import Change, ChangeLog
from recommender.compact import LOCK_FILE, compact, merge
from recommender.corpus import article_record, parse_record
from recommender.errors import BundleError, InvalidInputError
from recommender.schema import ARTICLES_FILE, MANIFEST
from recommender.values import SCORE_TOLERANCE

from .conftest import TINY, write_jsonl

EDIT = {"id": "f1", "title": "United lose the cup final", "body": "The football club United lost the cup final."}
NEW = {"id": "n1", "title": "A new football league", "body": "Clubs form a football league with a cup and a final."}


def _change(seq: int, op: str, article_id: str, record: dict | None = None) -> Change:
    return Change(seq, op, article_id, article_record(parse_record(record)) if record else None, 0.0)  # type: ignore[arg-type]


def test_merge_replaces_in_place_appends_and_removes() -> None:
    base = [parse_record(r) for r in TINY[:4]]
    changes = [
        _change(1, "upsert", "n1", NEW),
        _change(2, "upsert", "f2", {**TINY[1], "title": "Edited"}),
        _change(3, "delete", "f3"),
        _change(4, "delete", "nobody"),
        _change(5, "delete", "f1"),
        _change(6, "upsert", "f1", EDIT),
        _change(7, "upsert", "n1", {**NEW, "title": "Edited again"}),
    ]
    merged = merge(base, changes)
    assert list(merged) == ["f2", "f4", "n1", "f1"]
    assert merged["f2"].title == "Edited" and merged["n1"].title == "Edited again"
    assert merged["f1"] == parse_record(EDIT) and merged["f4"] == base[3]


def test_merge_refuses_a_bad_record_naming_its_change() -> None:
    bad = Change(9, "upsert", "x", {"id": "x", "title": 3}, 0.0)
    with pytest.raises(InvalidInputError, match=r"change 9 \(upsert of 'x'\): title must be a string, got int"):
        merge([], [bad])
    other = Change(10, "upsert", "x", {"id": "y", "title": "T"}, 0.0)
    with pytest.raises(InvalidInputError, match="change 10 is an upsert of 'x' with a record of 'y'"):
        merge([], [other])


def _parameters(models: Path) -> dict:
    return load_bundle(models).manifest["parameters"]


def _train_cli(corpus: Path, models: Path, parameters: dict) -> None:
    flags = {
        "--k": parameters["k"],
        "--min-df": parameters["min_df"],
        "--max-df": parameters["max_df"],
        "--min-similarity": parameters["min_similarity"],
        "--semantic-components": parameters["semantic_components"],
        "--semantic-weight": parameters["semantic_weight"],
    }
    args = [str(x) for pair in flags.items() for x in pair]
    command = [sys.executable, "-m", "recommender", "train", "--corpus", str(corpus), "--models-dir", str(models)]
    done = subprocess.run([*command, *args, "--quiet"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def _lists(models: Path) -> tuple[list[list[str]], np.ndarray]:
    parts = load_bundle(models)
    ids = parts.ids
    neighbours = np.asarray(parts.arrays["neighbours"])
    named = [[ids[j] for j in row if j >= 0] for row in neighbours]
    return [[ids[i], *row] for i, row in enumerate(named)], np.asarray(parts.arrays["neighbour_scores"])


def test_compaction_equals_a_training_on_the_merged_records(tiny_models: Path, tmp_path: Path) -> None:
    before = current_version(tiny_models)
    with ChangeLog(tiny_models) as log:
        log.append("upsert", "f1", article_record(parse_record(EDIT)))
        log.append("upsert", "n1", article_record(parse_record(NEW)))
        log.append("delete", "b2")
        log.append("delete", "unknown")
    result = compact(tiny_models)
    assert result.compacted and (result.added, result.edited, result.deleted) == (1, 1, 1)
    assert (result.articles, result.log_seq, result.changes) == (len(TINY), 4, 4)
    assert current_version(tiny_models) == result.version != before
    manifest = load_bundle(tiny_models).manifest
    assert log_seq(manifest) == 4
    with ChangeLog(tiny_models) as log:
        assert list(log.since(0)) == [] and log.last_seq() == 0
        assert log.append("delete", "f2") == 5  # sequence numbers are never reused

    merged = list(read_records(resolve(tiny_models)))
    assert [r["id"] for r in merged] == [r["id"] for r in TINY if r["id"] != "b2"] + ["n1"]
    reference = tmp_path / "reference"
    _train_cli(write_jsonl(tmp_path / "merged.jsonl", merged), reference, manifest["parameters"])
    lists, scores = _lists(tiny_models)
    expected_lists, expected_scores = _lists(reference)
    assert lists == expected_lists
    np.testing.assert_allclose(scores, expected_scores, atol=SCORE_TOLERANCE)


def test_nothing_to_compact_unless_forced(tiny_models: Path) -> None:
    version = current_version(tiny_models)
    result = compact(tiny_models)
    assert not result.compacted and result.version == version and result.log_seq == 0
    assert result.summary() == f"nothing to compact: bundle {version} includes every logged change (seq 0)"
    assert current_version(tiny_models) == version
    forced = compact(tiny_models, force=True)
    assert forced.compacted and forced.version != version and forced.articles == len(TINY)
    assert (forced.added, forced.edited, forced.deleted, forced.changes) == (0, 0, 0, 0)


def test_a_second_compaction_fails_at_once(tiny_models: Path) -> None:
    with ChangeLog(tiny_models) as log:
        log.append("delete", "b1")
    with open(tiny_models / LOCK_FILE, "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(InvalidInputError, match="a compaction is already running in"):
            compact(tiny_models)
    assert compact(tiny_models).compacted  # the lock is free again


def _state(models: Path) -> tuple[str | None, list[str], list[Change]]:
    with ChangeLog(models) as log:
        return current_version(models), list_versions(models), list(log.since(0))


@pytest.mark.parametrize("failure", ["bad change", "everything deleted", "damaged articles", "empty model"])
def test_a_failure_leaves_the_bundle_and_the_log(tiny_models: Path, failure: str) -> None:
    folder = resolve(tiny_models)
    with ChangeLog(tiny_models) as log:
        if failure == "bad change":
            log.append("upsert", "n1", {"id": "n1", "title": ["not", "text"]})
        elif failure == "everything deleted":
            log.append_many(("delete", r["id"], None) for r in TINY)
        elif failure == "damaged articles":
            log.append("delete", "b1")
            with (folder / ARTICLES_FILE).open("ab") as handle:
                handle.write(b"\n")
        else:
            log.append_many(("delete", r["id"], None) for r in TINY[1:])
    before = _state(tiny_models)
    expected: type[Exception] = BundleError if failure == "damaged articles" else InvalidInputError
    with pytest.raises(expected):
        compact(tiny_models)
    assert _state(tiny_models) == before
    assert not [p.name for p in tiny_models.iterdir() if p.name.startswith(".tmp-")]


def test_an_older_bundle_is_refused(tiny_models: Path) -> None:
    folder = resolve(tiny_models)
    manifest = json.loads((folder / MANIFEST).read_text())
    del manifest["files"][ARTICLES_FILE]
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with ChangeLog(tiny_models) as log:
        log.append("delete", "b1")
    before = _state(tiny_models)
    with pytest.raises(BundleError) as info:
        compact(tiny_models)
    assert str(info.value) == f"bundle {folder.name} has no {ARTICLES_FILE}: retrain it with 'recommender train'"
    assert _state(tiny_models) == before


def test_no_bundle_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist: train a model first"):
        compact(tmp_path / "models")
    (tmp_path / "models").mkdir()
    with pytest.raises(BundleError, match="no current model in"):
        compact(tmp_path / "models")


def test_a_compaction_stopped_before_the_truncation_loses_nothing(
    tiny_models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ChangeLog(tiny_models) as log:
        log.append("delete", "b1")
        log.append("upsert", "n1", article_record(parse_record(NEW)))

    def killed(self: ChangeLog, through: int) -> int:
        raise KeyboardInterrupt  # as if killed right after the switch of current

    monkeypatch.setattr(ChangeLog, "truncate", killed)
    with pytest.raises(KeyboardInterrupt):
        compact(tiny_models)
    monkeypatch.undo()
    parts = load_bundle(tiny_models)
    assert log_seq(parts.manifest) == 2 and "n1" in parts.ids and "b1" not in parts.ids
    with ChangeLog(tiny_models) as log:
        assert [c.seq for c in log.since(0)] == [1, 2]
        assert list(log.since(log_seq(parts.manifest))) == []  # replay has nothing to apply twice
    result = compact(tiny_models)
    assert not result.compacted and result.version == parts.version
    with ChangeLog(tiny_models) as log:
        assert list(log.since(0)) == []
