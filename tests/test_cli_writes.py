"""recommender upsert, delete and compact, through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recommender.bundle import current_version
from recommender.changelog import ChangeLog
from recommender.corpus import article_record, parse_record

from .conftest import TINY, write_jsonl
from .test_cli import run

NEW = [
    {"id": "n1", "title": "A new football league", "body": "Clubs form a football league."},
    {"id": "f1", "title": "United lose the cup final", "body": "United lost the cup final."},
]


def _logged(models: Path) -> list[tuple[int, str, str, dict | None]]:
    with ChangeLog(models) as log:
        return [(c.seq, c.op, c.article_id, c.record) for c in log.since(0)]


def test_upsert_logs_one_record_per_article(tiny_models: Path, tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "new.jsonl", NEW)
    proc = run("upsert", "--corpus", str(corpus), "--models-dir", str(tiny_models))
    assert proc.stdout == "logged 2 upserts (seq 1-2)\n"
    assert _logged(tiny_models) == [
        (1, "upsert", "n1", article_record(parse_record(NEW[0]))),
        (2, "upsert", "f1", article_record(parse_record(NEW[1]))),
    ]
    proc = run("upsert", "--source", "file", str(corpus), models=tiny_models)
    assert proc.stdout == "logged 2 upserts (seq 3-4)\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "n1", "title": "ok"}\n{nope\n', "new.jsonl:2: malformed JSON"),
        ('{"id": "n1", "title": "ok"}\n{"id": "n1", "title": "again"}\n', "new.jsonl:2: duplicate id 'n1'"),
        ('{"id": "n1", "title": 5}\n', "new.jsonl:1: title must be a string, got int"),
        ("", "corpus is empty: no valid articles in"),
    ],
)
def test_a_bad_upsert_file_logs_nothing(tiny_models: Path, tmp_path: Path, content: str, message: str) -> None:
    corpus = tmp_path / "new.jsonl"
    corpus.write_text(content, encoding="utf-8")
    proc = run("upsert", "--corpus", str(corpus), models=tiny_models, check=1)
    assert proc.stderr.startswith("recommender: error: ") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert _logged(tiny_models) == []


def test_delete_logs_live_ids_only(tiny_models: Path, tmp_path: Path) -> None:
    proc = run("delete", "b1", "b2", models=tiny_models)
    assert proc.stdout == "logged 2 deletes (seq 1-2)\n"
    proc = run("delete", "b1", models=tiny_models, check=1)
    assert proc.stderr == "recommender: error: unknown article id 'b1'\n"
    proc = run("delete", "f1", "nobody", models=tiny_models, check=1)
    assert proc.stderr == "recommender: error: unknown article id 'nobody'\n"
    proc = run("delete", "f1", "f2", "f1", models=tiny_models, check=1)
    assert proc.stderr == "recommender: error: article id 'f1' is given twice\n"
    assert [c[2] for c in _logged(tiny_models)] == ["b1", "b2"]
    # An id the log added is live; a compacted log still knows its bundle's ids.
    run("upsert", "--corpus", str(write_jsonl(tmp_path / "n.jsonl", NEW[:1])), models=tiny_models)
    run("delete", "n1", models=tiny_models)
    run("compact", "--quiet", models=tiny_models)
    run("delete", "n1", models=tiny_models, check=1)
    assert run("delete", "f4", models=tiny_models).stdout == "logged 1 deletes (seq 5-5)\n"


def test_compact_prints_one_line(tiny_models: Path, tmp_path: Path) -> None:
    proc = run("compact", models=tiny_models)
    assert proc.stdout.startswith("nothing to compact: bundle ") and proc.stdout.count("\n") == 1
    run("upsert", "--corpus", str(write_jsonl(tmp_path / "n.jsonl", NEW)), models=tiny_models)
    proc = run("compact", "--quiet", models=tiny_models)
    assert proc.stdout.startswith("compacted 2 change(s) through seq 2 into ")
    assert proc.stdout.rstrip().endswith("s") and proc.stdout.count("\n") == 1
    assert f"into {current_version(tiny_models)}:" in proc.stdout
    assert "14 articles (1 added, 1 edited, 0 deleted)" in proc.stdout
    assert _logged(tiny_models) == []
    assert "compacted 0 change(s)" in run("compact", "--force", "--quiet", models=tiny_models).stdout


@pytest.mark.parametrize("command", [["compact"], ["delete", "f1"], ["upsert", "--corpus", "CORPUS"]])
def test_no_bundle_is_a_clear_error(tmp_path: Path, command: list[str]) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", TINY)
    args = [str(corpus) if a == "CORPUS" else a for a in command]
    proc = run(*args, "--models-dir", str(tmp_path / "models"), check=1)
    assert (
        proc.stderr
        == f"recommender: error: models directory {str(tmp_path / 'models')!r} does not exist: train a model first\n"
    )
    assert not (tmp_path / "models").exists()


def test_usage_errors(tiny_models: Path) -> None:
    assert "the following arguments are required: ID" in run("delete", models=tiny_models, check=2).stderr
    assert "give at least one --corpus PATH or --source" in run("upsert", models=tiny_models, check=2).stderr


def test_upsert_records_round_trip_through_the_log(tiny_models: Path, tmp_path: Path) -> None:
    odd = {
        "id": "o1",
        "title": "AT&amp;T &amp;lt;b&amp;gt;",
        "body": "<p>x &lt;div&gt;</p>",
        "category": "c",
        "views": 3,
    }
    run("upsert", "--corpus", str(write_jsonl(tmp_path / "o.jsonl", [odd])), models=tiny_models)
    [(_, _, _, record)] = _logged(tiny_models)
    assert parse_record(json.loads(json.dumps(record))) == parse_record(odd)
