from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from recommender.corpus import read_corpus
from recommender.errors import CorpusError, InvalidInputError
from recommender.text import clean_text, html_to_text, make_excerpt

from .conftest import write_jsonl


def test_reads_jsonl_and_keeps_ids_as_strings(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "a.jsonl", [{"id": 7, "title": "Seven", "body": "Body"}, {"id": "x", "body": "Only body"}]
    )
    report = read_corpus(path)
    assert [a.id for a in report.articles] == ["7", "x"]
    assert report.skipped == []


def test_reads_gzip_json_array_and_csv(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "a.json.gz", "wt", encoding="utf-8") as f:
        json.dump([{"id": "a", "title": "Alpha"}, {"id": "b", "title": "Beta"}], f)
    (tmp_path / "c.csv").write_text(
        'id,title,body,tags\nc,"Gamma, the third","Text, with comma",x; y\nd,Delta,,"p, q"\n', encoding="utf-8"
    )
    report = read_corpus([tmp_path / "a.json.gz", tmp_path / "c.csv"])
    assert [a.id for a in report.articles] == ["a", "b", "c", "d"]
    assert report.articles[2].title == "Gamma, the third"
    assert report.articles[3].tags == ("p", "q")


def test_fields_are_cleaned_and_derived(tmp_path: Path) -> None:
    body = "<p>First &amp; best.</p><script>alert(1)</script><style>p{}</style><p>" + "word " * 60 + "</p>"
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {
                "id": "h",
                "title": " A &lt;b&gt; title ",
                "body": body,
                "category": "news",
                "tags": "one, two,one",
                "published_at": "2026-01-02T03:04:05Z",
                "views": 12,
            }
        ],
    )
    article = read_corpus(path).articles[0]
    assert article.body.startswith("First & best.")
    assert "alert" not in article.body and "p{}" not in article.body
    assert article.title == "A <b> title"
    assert article.section == "news"
    assert article.tags == ("one", "two")
    assert article.published_at == "2026-01-02T03:04:05+00:00"
    assert article.extra == {"views": 12}
    assert article.excerpt.endswith("\u2026") and len(article.excerpt) <= 160


def test_excerpt_cuts_at_word_boundary() -> None:
    text = "alpha beta gamma delta epsilon"
    assert make_excerpt(text, 100) == text
    cut = make_excerpt(text, 20)
    assert cut == "alpha beta gamma\u2026"
    assert len(cut) <= 20


def test_html_helpers() -> None:
    assert html_to_text("<div>a<br>b</div>") == "a\n\nb"
    assert clean_text("Fish &amp; chips") == "Fish & chips"
    assert clean_text("x < y and y > z") == "x < y and y > z"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "a", "title": "T"\n', "bad.jsonl:2: malformed JSON: Expecting ',' delimiter at column 25"),
        ('{"title": "No id"}\n', "bad.jsonl:2: missing id"),
        ('{"id": "ok", "title": "Again"}\n', "bad.jsonl:2: duplicate id 'ok' (first seen at {path}:1)"),
        (
            '{"id": "e", "title": "", "body": "   "}\n',
            "bad.jsonl:2: article 'e' has no text: title and body are both empty",
        ),
        (
            '{"id": "d", "title": "T", "published_at": "next week"}\n',
            "bad.jsonl:2: published_at must be an ISO 8601 date or datetime, got 'next week'",
        ),
        ('{"id": "t", "title": 5}\n', "bad.jsonl:2: title must be a string, got int"),
        ('{"id": true, "title": "T"}\n', "bad.jsonl:2: id must be a string or an integer, got bool"),
        ('["not", "an", "object"]\n', "bad.jsonl:2: a record must be a JSON object, got list"),
    ],
)
def test_bad_records_fail_with_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "ok", "title": "Fine"}\n' + line, encoding="utf-8")
    with pytest.raises(CorpusError) as info:
        read_corpus(path)
    assert str(info.value) == message.replace("bad.jsonl", str(path)).replace("{path}", str(path))


def test_skip_mode_reports_grouped_reasons(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        '{"id": "a", "title": "A"}\n{broken\n{"id": "a", "title": "Again"}\n{"title": "x"}\n{"id": "b", "body": "B"}\n{oops\n',
        encoding="utf-8",
    )
    report = read_corpus(path, on_error="skip")
    assert [a.id for a in report.articles] == ["a", "b"]
    assert [(p.line, p.kind) for p in report.skipped] == [
        (2, "malformed JSON"),
        (3, "duplicate id"),
        (4, "missing id"),
        (6, "malformed JSON"),
    ]
    assert report.skipped_summary() == "skipped 4 record(s): 2 malformed JSON, 1 duplicate id, 1 missing id"


def test_unknown_format_empty_corpus_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(
        CorpusError,
        match=r"notes.txt: unknown corpus format '.txt': expected .jsonl, .ndjson, .json or .csv, optionally with .gz$",
    ):
        read_corpus(tmp_path / "notes.txt")
    (tmp_path / "empty.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(CorpusError) as info:
        read_corpus(tmp_path / "empty.jsonl")
    assert str(info.value) == f"corpus is empty: no valid articles in {tmp_path / 'empty.jsonl'}"
    with pytest.raises(CorpusError, match="no such corpus file"):
        read_corpus(tmp_path / "missing.jsonl")
    with pytest.raises(InvalidInputError, match="on_error must be 'fail' or 'skip', got 'ignore'"):
        read_corpus(tmp_path / "empty.jsonl", on_error="ignore")


def test_hostile_input_is_refused_not_crashing(tmp_path: Path) -> None:
    (tmp_path / "bin.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(CorpusError, match="cannot be read as .jsonl"):
        read_corpus(tmp_path / "bin.jsonl.gz")
    (tmp_path / "latin.jsonl").write_bytes(b'{"id": "a", "title": "caf\xe9"}\n')
    with pytest.raises(CorpusError, match="cannot be read as .jsonl"):
        read_corpus(tmp_path / "latin.jsonl")
    huge = write_jsonl(tmp_path / "huge.jsonl", [{"id": "h", "body": "x" * 1_000_001}])
    with pytest.raises(CorpusError, match=r"huge.jsonl:1: body must be at most 1000000 characters, got 1000001"):
        read_corpus(huge)
    (tmp_path / "obj.json").write_text('{"id": "a"}', encoding="utf-8")
    with pytest.raises(CorpusError, match="must hold an array of article objects, got dict"):
        read_corpus(tmp_path / "obj.json")
