"""The command line, run through its real entry point as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import write_jsonl


def run(*args: str, models: Path | None = None, check: int | None = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    if models is not None:
        env["RECOMMENDER_MODELS_DIR"] = str(models)
    proc = subprocess.run(
        [sys.executable, "-m", "recommender", *args], capture_output=True, text=True, env=env, timeout=120
    )
    if check is not None:
        assert proc.returncode == check, proc.stderr
    return proc


@pytest.fixture(scope="module")
def cli_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from .conftest import TINY

    root = tmp_path_factory.mktemp("cli")
    corpus = write_jsonl(root / "tiny.jsonl", TINY)
    proc = run(
        "train",
        "--corpus",
        str(corpus),
        "--models-dir",
        str(root / "models"),
        "--min-df",
        "1",
        "--max-df",
        "1",
        "--k",
        "5",
        "--min-similarity",
        "0.01",
        "--quiet",
    )
    assert proc.stdout.startswith("trained ") and "13 articles" in proc.stdout
    return root / "models"


def test_related_json_and_table(cli_models: Path) -> None:
    out = json.loads(run("related", "f1", "--limit", "2", "--format", "json", models=cli_models).stdout)
    assert set(out) == {"model_version", "id", "collapsed", "items"}
    assert len(out["items"]) == 2
    assert {"id", "title", "url", "excerpt", "score"} <= set(out["items"][0])
    table = run("related", "f1", "--limit", "2", "--models-dir", str(cli_models)).stdout
    assert table.splitlines()[0].split() == ["score", "id", "title"]
    text = json.loads(
        run("related", "--text", "comet telescope", "--title", "Sky", "--format", "json", models=cli_models).stdout
    )
    assert text["id"] is None and text["items"][0]["id"].startswith("s")


def test_export_and_info(cli_models: Path, tmp_path: Path) -> None:
    run("export", "--out", str(tmp_path / "e.jsonl"), "--limit", "3", models=cli_models)
    lines = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert len(lines) == 13
    assert all(row["id"] not in [r["id"] for r in row["related"]] for row in lines)
    assert set(lines[0]["related"][0]) == {"id", "score"}
    info = run("info", models=cli_models).stdout
    assert "articles" in info and "13" in info
    assert json.loads(run("info", "--format", "json", models=cli_models).stdout)["articles"] == 13


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["related", "f1", "--limit", "0"], 2, "argument --limit: --limit must be an integer in [1, 100], got 0"),
        (
            ["related", "f1", "--limit", "many"],
            2,
            "argument --limit: --limit must be an integer in [1, 100], got 'many'",
        ),
        (["related", "no-such-id"], 1, "recommender: error: unknown article id 'no-such-id'"),
        (["related"], 2, "related needs exactly one of an article ID or --text"),
        (
            ["related", "f1", "--published-after", "someday"],
            1,
            "recommender: error: published_after must be an ISO 8601 date or datetime, got 'someday'",
        ),
        (
            ["train", "--corpus", "/nonexistent/c.xml"],
            1,
            "recommender: error: /nonexistent/c.xml: unknown corpus format '.xml': expected .jsonl, .ndjson, .json or .csv, optionally with .gz",
        ),
        (["train", "--corpus", "x.jsonl", "--on-error", "ignore"], 2, "argument --on-error: invalid choice: 'ignore'"),
        (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
        (
            ["train", "--corpus", "x.jsonl", "--tag-boost", "2"],
            2,
            "argument --tag-boost: --tag-boost must be a number in [0.0, 1.0], got '2'",
        ),
        (
            ["evaluate", "--corpus", "x.jsonl", "--keep-field", "category"],
            2,
            "argument --keep-field: invalid choice: 'category'",
        ),
    ],
)
def test_errors_are_one_line_with_exit_codes(cli_models: Path, args: list[str], code: int, message: str) -> None:
    proc = run(*args, models=cli_models, check=code)
    assert message in proc.stderr
    if code == 1:
        assert proc.stderr.strip() == message
    assert "Traceback" not in proc.stderr


def test_train_on_error_skip_reports_and_fail_writes_nothing(tmp_path: Path) -> None:
    corpus = tmp_path / "mixed.jsonl"
    corpus.write_text(
        '{"id": "a", "title": "Alpha cup final"}\n{nope\n{"id": "b", "title": "Beta cup final"}\n', encoding="utf-8"
    )
    models = tmp_path / "models"
    failed = run("train", "--corpus", str(corpus), "--models-dir", str(models), "--min-df", "1", "--quiet", check=1)
    assert (
        failed.stderr.strip()
        == f"recommender: error: {corpus}:2: malformed JSON: Expecting property name enclosed in double quotes at column 2"
    )
    assert not models.exists() or not any(models.iterdir())
    ok = run(
        "train",
        "--corpus",
        str(corpus),
        "--models-dir",
        str(models),
        "--min-df",
        "1",
        "--max-df",
        "1",
        "--on-error",
        "skip",
        "--quiet",
    )
    assert "skipped 1 record(s): 1 malformed JSON" in ok.stderr
    assert f"{corpus}:2: malformed JSON" in ok.stderr
    assert "2 articles" in ok.stdout


def test_no_model_is_a_clear_error(tmp_path: Path) -> None:
    proc = run("related", "x", "--models-dir", str(tmp_path / "none"), check=1)
    assert proc.stderr.strip().endswith("does not exist: train a model first")


# --- one-line errors for files and folders (issue 9, item 10) ---------------------------------


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr.strip()


def test_export_into_a_missing_folder_is_one_line(cli_models: Path) -> None:
    proc = run("export", "--out", "/nonexistent/d/x.jsonl", models=cli_models, check=None)
    assert _one_line_error(proc) == "recommender: error: /nonexistent/d/x.jsonl: No such file or directory"


def test_export_under_a_file_or_onto_a_folder_is_one_line(cli_models: Path, tmp_path: Path) -> None:
    (tmp_path / "somefile").write_text("x", encoding="utf-8")
    out = tmp_path / "somefile" / "x.jsonl"
    proc = run("export", "--out", str(out), models=cli_models, check=None)
    assert _one_line_error(proc) == f"recommender: error: {out}: Not a directory"
    (tmp_path / "folder").mkdir()
    proc = run("export", "--out", str(tmp_path / "folder"), models=cli_models, check=None)
    assert _one_line_error(proc) == f"recommender: error: {tmp_path / 'folder'}: Is a directory"
    assert list((tmp_path / "folder").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "somefile"]


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    from .conftest import TINY

    return write_jsonl(tmp_path / "tiny.jsonl", TINY)


def _train(corpus: Path, models: Path) -> subprocess.CompletedProcess[str]:
    return run("train", "--corpus", str(corpus), "--models-dir", str(models), "--min-df", "1", "--quiet", check=None)


def test_train_into_a_models_dir_under_a_file_is_one_line(tiny_corpus: Path, tmp_path: Path) -> None:
    (tmp_path / "somefile").write_text("x", encoding="utf-8")
    models = tmp_path / "somefile" / "models"
    assert _one_line_error(_train(tiny_corpus, models)) == (
        f"recommender: error: cannot create the models directory {str(models)!r}: Not a directory"
    )


def test_train_into_a_models_dir_that_is_a_file_is_one_line(tiny_corpus: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.write_text("not a folder", encoding="utf-8")
    assert (
        _one_line_error(_train(tiny_corpus, models))
        == f"recommender: error: the models directory {str(models)!r} exists and is not a directory"
    )
    assert models.read_text(encoding="utf-8") == "not a folder"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        (
            "long-id.jsonl",
            b'{"id": "a", "title": "Alpha"}\n{"id": ' + b"7" * 5000 + b', "title": "Beta"}\n',
            "{path}:2: id must be at most 200 printable characters, got an integer of 5000 digits",
        ),
        (
            "latin.jsonl",
            b'{"id": "a", "title": "Alpha"}\n{"id": "b", "title": "Caf\xe9"}\n',
            "{path}:2: cannot be read as .jsonl: byte 0xe9 at column 26 is not valid UTF-8 (save the file as UTF-8)",
        ),
        (
            "quote.csv",
            b'id,title\na,Alpha\nb,"Beta\nc,Gamma\n',
            "{path}:3: malformed CSV: the record starting on this line ends inside a quoted field "
            "(a quote is never closed; the parser reached line 4, the end of the file)",
        ),
    ],
)
def test_train_on_bad_corpus_files_is_one_line(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    expected = "recommender: error: " + message.format(path=path)
    assert _one_line_error(_train(path, tmp_path / "models")) == expected
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_train_on_a_directory_or_a_missing_file_is_one_line(tmp_path: Path) -> None:
    assert _one_line_error(_train(tmp_path, tmp_path / "models")) == (
        f"recommender: error: {tmp_path} is a directory: give corpus files "
        "(.jsonl, .ndjson, .json or .csv, optionally with .gz)"
    )
    missing = tmp_path / "missing.jsonl"
    assert _one_line_error(_train(missing, tmp_path / "models")) == (
        f"recommender: error: {missing}: no such corpus file: the path does not exist"
    )


def test_evaluate_report_under_a_file_is_one_line(tmp_path: Path) -> None:
    from .conftest import TINY

    corpus = write_jsonl(tmp_path / "labeled.jsonl", [{**r, "category": r["section"]} for r in TINY])
    (tmp_path / "somefile").write_text("x", encoding="utf-8")
    out = tmp_path / "somefile" / "report"
    proc = run("evaluate", "--corpus", str(corpus), "--out", str(out), "--no-baseline", "--quiet", check=None)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"recommender: error: {out}: Not a directory"
    (tmp_path / "report.md").write_text("x", encoding="utf-8")
    out = tmp_path / "report.md"
    proc = run("evaluate", "--corpus", str(corpus), "--out", str(out), "--no-baseline", "--quiet", check=None)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"recommender: error: {out}: exists and is not a directory"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train"], "give at least one --corpus PATH or --source KIND LOCATION"),
        (["train", "--source", "sql", "sqlite:///x.db"], "--source sql sqlite:///x.db: a sql source needs a query"),
        (["train", "--source", "gopher", "x"], "--source gopher x: source kind must be one of feed, file, html"),
        (["train", "--source", "feed", "f.xml", "--timeout", "0"], "--timeout must be a number in [0.1, 3600.0]"),
        (["evaluate"], "give at least one --corpus PATH or --source KIND LOCATION"),
    ],
)
def test_inputs_are_usage_errors_when_missing_or_malformed(tmp_path: Path, args: list[str], message: str) -> None:
    extra = ["--models-dir", str(tmp_path / "m")] if args[0] == "train" else ["--out", str(tmp_path / "m")]
    proc = run(*args, *extra, check=2)
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "m").exists()


def test_a_jsonl_file_given_as_a_file_source_trains(tmp_path: Path, tiny_corpus: Path) -> None:
    models = tmp_path / "models"
    proc = run("train", "--source", "file", str(tiny_corpus), "--models-dir", str(models), "--min-df", "1", "--quiet")
    assert "13 articles" in proc.stdout
