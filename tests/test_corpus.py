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


# --- numbers in ids and fields (issue 9, item 5) ---------------------------------------------


def _read_error(path: Path | list[Path]) -> str:
    with pytest.raises(CorpusError) as info:
        read_corpus(path)
    return str(info.value)


def test_integer_id_too_long_for_python_is_a_clear_record_error(tmp_path: Path) -> None:
    digits = "7" * 5000
    path = tmp_path / "big.jsonl"
    path.write_text(f'{{"id": "ok", "title": "Fine"}}\n{{"id": {digits}, "title": "T"}}\n', encoding="utf-8")
    assert _read_error(path) == f"{path}:2: id must be at most 200 printable characters, got an integer of 5000 digits"
    report = read_corpus(path, on_error="skip")
    assert [a.id for a in report.articles] == ["ok"]
    assert report.skipped_summary() == "skipped 1 record(s): 1 bad id"
    negative = tmp_path / "negative.json"
    negative.write_text(f'[{{"id": "ok", "title": "Fine"}}, {{"id": -{digits}, "title": "T"}}]', encoding="utf-8")
    assert (
        _read_error(negative)
        == f"{negative}:2: id must be at most 200 printable characters, got an integer of 5000 digits"
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("title", "9" * 5000, "title must be a string, got an integer of 5000 digits"),
        ("published_at", "9" * 5000, "published_at must be an ISO 8601 string, got an integer of 5000 digits"),
        ("tags", "[" + "9" * 5000 + "]", "each tag must be a string, got an integer of 5000 digits"),
        ("views", "9" * 5000, "views holds an integer of 5000 digits: numbers may have at most 4300 digits"),
        (
            "stats",
            '{"reads": [' + "9" * 5000 + "]}",
            "stats holds an integer of 5000 digits: numbers may have at most 4300 digits",
        ),
    ],
)
def test_huge_integers_in_other_fields_are_record_errors(tmp_path: Path, field: str, value: str, message: str) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text(f'{{"id": "a", "title": "T", "body": "B", "{field}": {value}}}\n', encoding="utf-8")
    assert _read_error(path) == f"{path}:1: {message}"


@pytest.mark.parametrize(
    ("raw", "outcome"),
    [
        ("7", "7"),
        ("-7", "-7"),
        ("0", "0"),
        ("9" * 200, "9" * 200),
        ("9" * 201, "id must be at most 200 printable characters, got an integer of 201 digits"),
        ("1.5", "id must be a string or an integer, got float"),
        ("1e2", "id must be a string or an integer, got float"),
        ("1e999", "id must be a string or an integer, got float"),
        ("NaN", "id must be a string or an integer, got float"),
        ("-Infinity", "id must be a string or an integer, got float"),
        ("false", "id must be a string or an integer, got bool"),
        (
            '"' + "x" * 201 + '"',
            "id must be at most 200 printable characters, got 201 characters: 'xxxxxxxxxxxxxxxxxxxx'...",
        ),
        ('"a\\u0000b"', "id must be at most 200 printable characters, got 'a\\x00b'"),
        ("[1]", "id must be a string or an integer, got list"),
    ],
)
def test_json_ids_of_every_kind(tmp_path: Path, raw: str, outcome: str) -> None:
    path = tmp_path / "ids.jsonl"
    path.write_text(f'{{"id": {raw}, "title": "T"}}\n', encoding="utf-8")
    if outcome.startswith("id must"):
        assert _read_error(path) == f"{path}:1: {outcome}"
    else:
        assert [a.id for a in read_corpus(path).articles] == [outcome]


def test_csv_ids_are_text_as_written(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("id,title\n1.5,A\ntrue,B\n007,C\n1e999,D\n", encoding="utf-8")
    assert [a.id for a in read_corpus(path).articles] == ["1.5", "true", "007", "1e999"]
    path.write_text(f"id,title\n1,A\n{'9' * 5000},B\n", encoding="utf-8")
    assert _read_error(path) == (
        f"{path}:3: id must be at most 200 printable characters, got 5000 characters: '99999999999999999999'..."
    )


# --- encodings, CSV errors, paths, empty and oversized input (issue 9, item 12) ---------------

_BOM = b"\xef\xbb\xbf"


def _write_bytes(path: Path, data: bytes) -> Path:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "data", "where"),
    [
        (
            "latin.jsonl",
            b'{"id": "a", "title": "A"}\n{"id": "b", "title": "caf\xe9"}\n',
            "2: cannot be read as .jsonl: byte 0xe9 at column 26",
        ),
        (
            "latin.jsonl.gz",
            b'{"id": "a", "title": "A"}\n\n{"id": "b", "title": "caf\xe9"}\n',
            "3: cannot be read as .jsonl: byte 0xe9 at column 26",
        ),
        (
            "latin.csv",
            b'id,title\r\na,A\r\nb,"two\r\nlines \xff"\r\n',
            "4: cannot be read as .csv: byte 0xff at column 7",
        ),
        (
            "latin.json",
            b'[\n {"id": "a", "title": "A"},\n {"id": "b", "title": "\xc3"}\n]\n',
            "3: cannot be read as .json: byte 0xc3 at column 24",
        ),
        ("utf16.jsonl", b'\xff\xfe{\x00"\x00', "1: cannot be read as .jsonl: byte 0xff at column 1"),
        ("cr.csv", b"id,title\ra,A\rb,caf\xe9\r", "3: cannot be read as .csv: byte 0xe9 at column 6"),
        ("bom.jsonl", _BOM + b'{"id": "\xe9"}\n', "1: cannot be read as .jsonl: byte 0xe9 at column 9"),
    ],
)
def test_bytes_that_are_not_utf8_are_named_with_file_and_line(
    tmp_path: Path, name: str, data: bytes, where: str
) -> None:
    path = _write_bytes(tmp_path / name, data)
    message = f"{path}:{where} is not valid UTF-8 (save the file as UTF-8)"
    assert _read_error(path) == message
    with pytest.raises(CorpusError) as info:
        read_corpus(path, on_error="skip")
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("bom.jsonl", _BOM + b'{"id": "a", "title": "Alpha"}\n{"id": "b", "title": "Beta"}\n'),
        ("bom.jsonl.gz", _BOM + b'{"id": "a", "title": "Alpha"}\n{"id": "b", "title": "Beta"}\n'),
        ("bom.csv", _BOM + b"id,title\r\na,Alpha\r\nb,Beta\r\n"),
        ("bom.csv.gz", _BOM + b"id,title\na,Alpha\nb,Beta\n"),
        ("bom.json", _BOM + b'[{"id": "a", "title": "Alpha"}, {"id": "b", "title": "Beta"}]'),
    ],
)
def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path, name: str, data: bytes) -> None:
    report = read_corpus(_write_bytes(tmp_path / name, data))
    assert [(a.id, a.title) for a in report.articles] == [("a", "Alpha"), ("b", "Beta")]


def test_csv_unclosed_quote_names_the_first_line_of_its_record(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text('id,title\na,Alpha\nb,"never closed\nc,Gamma\nd,Delta\n', encoding="utf-8")
    message = (
        f"{path}:3: malformed CSV: the record starting on this line ends inside a quoted field "
        "(a quote is never closed; the parser reached line 5, the end of the file)"
    )
    assert _read_error(path) == message
    with pytest.raises(CorpusError) as info:
        read_corpus(path, on_error="skip")
    assert str(info.value) == message


def test_csv_field_over_the_limit_names_the_first_line_of_its_record(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    lines = "".join("x" * 999 + "\n" for _ in range(1100))
    path.write_text(f'id,title,body\na,Alpha,A\nb,Beta,"{lines}"\nc,Gamma,C\n', encoding="utf-8")
    assert _read_error(path) == (
        f"{path}:3: malformed CSV: a field of the record starting on this line is over 1000001 characters "
        "(a quote never closed?); the parser stopped at line 1003"
    )


def test_csv_other_syntax_errors_name_the_first_line_of_their_record(tmp_path: Path) -> None:
    path = tmp_path / "stray.csv"
    path.write_text('id,title,body\na,Alpha,A\nb,"Beta\nmore" text,B\n', encoding="utf-8")
    assert _read_error(path) == (
        f"{path}:3: malformed CSV: ',' expected after '\"' (in the record starting on this line; "
        "the parser stopped at line 4)"
    )


def test_csv_nul_character_is_a_record_error_at_the_first_line(tmp_path: Path) -> None:
    path = tmp_path / "nul.csv"
    path.write_text('id,title,body\na,Alpha,A\nb,Beta,"two\nlines \x00 here"\nc,Gamma,C\n', encoding="utf-8")
    assert _read_error(path) == f"{path}:3: body holds a NUL character (is this a binary or UTF-16 file?)"
    report = read_corpus(path, on_error="skip")
    assert [a.id for a in report.articles] == ["a", "c"]
    assert report.skipped_summary() == "skipped 1 record(s): 1 NUL character"


def test_csv_row_errors_name_the_first_line_of_a_multi_line_record(tmp_path: Path) -> None:
    path = tmp_path / "cells.csv"
    path.write_text('id,title\na,Alpha\n\nb,"Two\nline title",extra\nc,Gamma\n', encoding="utf-8")
    assert _read_error(path) == f"{path}:4: row has more cells than the header (3 cells, header has 2)"
    report = read_corpus(path, on_error="skip")
    assert [a.id for a in report.articles] == ["a", "c"]
    assert [(p.line, p.kind) for p in report.skipped] == [(4, "wrong type")]


def test_csv_header_must_name_an_id_column_once(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("title,body\nAlpha,A\n", encoding="utf-8")
    assert _read_error(path) == f"{path}:1: the CSV header must name an 'id' column, got ['title', 'body']"
    path.write_text("id,title,title\na,Alpha,Again\n", encoding="utf-8")
    assert _read_error(path) == f"{path}:1: the CSV header names 'title' twice"
    path.write_text(" id , title \na,Alpha\n", encoding="utf-8")
    assert [(a.id, a.title) for a in read_corpus(path).articles] == [("a", "Alpha")]


@pytest.mark.parametrize("name", ["folder", "folder.jsonl"])
def test_a_directory_is_not_a_corpus_file(tmp_path: Path, name: str) -> None:
    (tmp_path / name).mkdir()
    assert _read_error(tmp_path / name) == (
        f"{tmp_path / name} is a directory: give corpus files (.jsonl, .ndjson, .json or .csv, optionally with .gz)"
    )


def test_a_missing_file_is_said_not_to_exist(tmp_path: Path) -> None:
    assert _read_error(tmp_path / "missing.jsonl") == (
        f"{tmp_path / 'missing.jsonl'}: no such corpus file: the path does not exist"
    )
    (tmp_path / "file").write_text("x", encoding="utf-8")
    assert _read_error(tmp_path / "file" / "a.csv") == (
        f"{tmp_path / 'file' / 'a.csv'}: no such corpus file: the path does not exist"
    )


@pytest.mark.parametrize(
    ("name", "data", "outcome"),
    [
        ("empty.jsonl", b"", "corpus is empty: no valid articles in {path}"),
        ("empty.jsonl.gz", b"", "corpus is empty: no valid articles in {path}"),
        ("empty.csv", b"", "corpus is empty: no valid articles in {path}"),
        ("header.csv", b"id,title\n", "corpus is empty: no valid articles in {path}"),
        ("blank.csv", b"id,title\n\n\n", "corpus is empty: no valid articles in {path}"),
        ("empty.json", b"", "{path}:1: malformed JSON: Expecting value at column 1"),
        ("array.json", b"[]", "corpus is empty: no valid articles in {path}"),
        ("articles.json", b'{"articles": []}', "corpus is empty: no valid articles in {path}"),
        ("number.json", b"42", "{path}:1: a .json corpus must hold an array of article objects, got int"),
        ("deep.jsonl", b"[" * 100_000 + b"\n", "{path}:1: malformed JSON: nested too deeply"),
        ("deep.json", b"[" * 100_000, "{path}:1: malformed JSON: nested too deeply"),
    ],
)
def test_empty_and_degenerate_files(tmp_path: Path, name: str, data: bytes, outcome: str) -> None:
    path = _write_bytes(tmp_path / name, data)
    assert _read_error(path) == outcome.format(path=path)


def test_truncated_gzip_is_refused(tmp_path: Path) -> None:
    whole = gzip.compress("".join(f'{{"id": "a{i}", "title": "Alpha"}}\n' for i in range(5000)).encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    assert _read_error(path) == (
        f"{path}: cannot be read as .jsonl: Compressed file ended before the end-of-stream marker was reached"
    )


def test_oversized_csv_field_and_duplicates_across_files(tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    big.write_text(f'id,title,body\na,Alpha,A\nb,Beta,"{"y" * 1_000_001}"\n', encoding="utf-8")
    assert _read_error(big) == f"{big}:3: body must be at most 1000000 characters, got 1000001"
    first = write_jsonl(tmp_path / "first.jsonl", [{"id": "a", "title": "Alpha"}])
    second = tmp_path / "second.csv"
    second.write_text("id,title\nb,Beta\n\na,Again\n", encoding="utf-8")
    assert _read_error([first, second]) == f"{second}:4: duplicate id 'a' (first seen at {first}:1)"
    report = read_corpus([first, second], on_error="skip")
    assert [a.id for a in report.articles] == ["a", "b"]
    assert report.skipped_summary() == "skipped 1 record(s): 1 duplicate id"


def test_html_with_a_marked_section_the_parser_rejects_is_still_read(tmp_path: Path) -> None:
    assert html_to_text("<p>Before</p><p><![ odd [ section ]]>after</p>") == "Before\n\nafter"
    path = write_jsonl(tmp_path / "odd.jsonl", [{"id": "a", "title": "T", "body": "<p>x</p><![ y [ z ]]> w"}])
    assert read_corpus(path).articles[0].body == "x\n\nw"


def test_corrupt_gzip_data_is_refused(tmp_path: Path) -> None:
    whole = bytearray(
        gzip.compress("".join(f'{{"id": "a{i}", "title": "Alpha {i * 7919 % 1000}"}}\n' for i in range(5000)).encode())
    )
    for at in range(40, len(whole) - 20, 97):
        whole[at] ^= 0x5A
    path = tmp_path / "corrupt.jsonl.gz"
    path.write_bytes(bytes(whole))
    assert _read_error(path) == (
        f"{path}: cannot be read as .jsonl: Error -3 while decompressing data: invalid bit length repeat"
    )
