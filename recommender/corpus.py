"""Read article corpora: JSON Lines, JSON arrays and CSV, gzip-compressed or not.

Every record is validated and turned into an :class:`Article`. A bad record
gets a message naming the file, the line and the rule it breaks; the caller
chooses to stop at the first one (``on_error="fail"``) or to skip bad records
and get a grouped account of what was skipped (``on_error="skip"``).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sys
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .errors import CorpusError, InvalidInputError
from .text import clean_line, clean_text, make_excerpt
from .values import parse_iso

FORMATS = (".jsonl", ".ndjson", ".json", ".csv")
# What read_corpus takes: a path, or a recommender.sources.Source.
CorpusInput = Any
MAX_FIELD_CHARS = 1_000_000
MAX_ID_CHARS = 200
EXCERPT_CHARS = 160
_TEXT_FIELDS = ("title", "url", "excerpt", "image", "author", "language")
_KNOWN = frozenset(
    {
        "id",
        "title",
        "body",
        "url",
        "excerpt",
        "image",
        "published_at",
        "section",
        "category",
        "tags",
        "author",
        "language",
    }
)


@dataclass(frozen=True, slots=True)
class Article:
    """One article of a corpus, validated and cleaned."""

    id: str
    title: str = ""
    body: str = ""
    url: str | None = None
    excerpt: str | None = None
    image: str | None = None
    published_at: str | None = None
    section: str | None = None
    tags: tuple[str, ...] = ()
    author: str | None = None
    language: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """The metadata a site shows: everything but the body and extra fields."""
        return {
            "id": self.id,
            "title": self.title,
            "url": self.url,
            "excerpt": self.excerpt,
            "image": self.image,
            "published_at": self.published_at,
            "section": self.section,
            "tags": list(self.tags),
            "author": self.author,
            "language": self.language,
        }


@dataclass(frozen=True, slots=True)
class Problem:
    """One rejected record: where it was and which rule it broke."""

    path: str
    line: int | str  # a line number in a file; a label elsewhere ("entry 3", "row id=17")
    kind: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.message}"
            if isinstance(self.line, int)
            else f"{self.path} ({self.line}): {self.message}"
        )


@dataclass
class CorpusReport:
    """What a read produced: the articles and the records that were skipped."""

    articles: list[Article]
    skipped: list[Problem]

    def skipped_summary(self) -> str:
        """'skipped 3 records: 2 duplicate id, 1 malformed JSON' (empty when none)."""
        if not self.skipped:
            return ""
        counts = Counter(p.kind for p in self.skipped)
        parts = ", ".join(f"{n} {kind}" for kind, n in counts.most_common())
        return f"skipped {len(self.skipped)} record(s): {parts}"


class RecordError(Exception):
    """One record breaks a rule: ``kind`` groups such problems in a report, ``message`` says which and why.

    Readers (and :mod:`recommender.sources`) yield it in place of a record, so
    that ``on_error`` decides whether the read stops or skips the record.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class _LongInteger:
    """A JSON integer with more digits than Python converts (``sys.get_int_max_str_digits``).

    ``int()`` refuses such a number, so the reader keeps only its length and
    the record that holds it is refused with a message naming the field.
    """

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _json_int(text: str) -> int | _LongInteger:
    limit = sys.get_int_max_str_digits()
    digits = len(text) - text.startswith("-")
    if limit and digits > limit:
        return _LongInteger(digits)
    return int(text)


# One decoder for the whole read: json.loads with any option builds a new one per call.
_loads = json.JSONDecoder(parse_int=_json_int).decode


def _type_name(value: Any) -> str:
    if isinstance(value, _LongInteger):
        return f"an integer of {value.digits} digits"
    return type(value).__name__


def _find_long_integer(value: Any) -> _LongInteger | None:
    if isinstance(value, _LongInteger):
        return value
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        found = _find_long_integer(child)
        if found is not None:
            return found
    return None


def read_corpus(
    paths: CorpusInput | Sequence[CorpusInput], on_error: str = "fail", *, progress: bool = False
) -> CorpusReport:
    """Read and validate articles from corpus files and sources.

    Each input is a path (a JSON Lines, JSON or CSV file, or a file or folder
    whose source kind is sniffed: see :func:`recommender.sources.sniff`) or a
    :class:`recommender.sources.Source`. ``on_error="fail"`` raises
    :class:`CorpusError` at the first bad record; ``"skip"`` leaves bad
    records out and lists them in the report. An empty result is always an
    error: there is nothing to train on. ``progress`` shows a progress bar
    of the records read on standard error.
    """
    from .sources import Source, records_of

    if on_error not in ("fail", "skip"):
        raise InvalidInputError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    if isinstance(paths, (str, os.PathLike, Source)):
        paths = [paths]
    if not paths:
        raise InvalidInputError("at least one corpus file is needed")
    articles: list[Article] = []
    skipped: list[Problem] = []
    seen: dict[str, str] = {}
    bar = _progress_bar(progress)
    try:
        for path in paths:
            name = path.name if isinstance(path, Source) else str(path)
            for line, raw in records_of(path):
                if bar is not None:
                    bar.update()
                where = f"{name}:{line}" if isinstance(line, int) else f"{name} ({line})"
                try:
                    if isinstance(raw, RecordError):
                        raise raw
                    article = parse_record(raw)
                    if article.id in seen:
                        raise RecordError(
                            "duplicate id", f"duplicate id {article.id!r} (first seen at {seen[article.id]})"
                        )
                except RecordError as exc:
                    problem = Problem(name, line, exc.kind, exc.message)
                    if on_error == "fail":
                        raise CorpusError(str(problem)) from None
                    skipped.append(problem)
                    continue
                seen[article.id] = where
                articles.append(article)
    finally:
        if bar is not None:
            bar.close()
    if not articles:
        names = ", ".join(p.name if isinstance(p, Source) else str(p) for p in paths)
        why = f" ({len(skipped)} bad record(s) skipped)" if skipped else ""
        raise CorpusError(f"corpus is empty: no valid articles in {names}{why}")
    return CorpusReport(articles, skipped)


def _progress_bar(enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    # Shown only once a read has taken a second: a small corpus (or a read that
    # fails at once) prints nothing but its result.
    return tqdm(unit=" records", desc="reading", file=sys.stderr, mininterval=0.5, delay=1.0, dynamic_ncols=True)


_BOM = b"\xef\xbb\xbf"


def _open_binary(path: Path) -> BinaryIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _open_text(path: Path) -> io.TextIOWrapper:
    # utf-8-sig drops a byte order mark at the start (Excel and Notepad write
    # one) and reads everything else as plain UTF-8.
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", newline="")


def corpus_format(path: Path) -> str:
    """The record format of ``path`` from its suffix, ignoring a trailing ``.gz``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = suffixes[-1] if suffixes else ""
    if fmt not in FORMATS:
        raise CorpusError(
            f"{path}: unknown corpus format {fmt or '(no suffix)'!r}: "
            "expected .jsonl, .ndjson, .json or .csv, optionally with .gz"
        )
    return fmt


def file_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    """The raw records of a JSON Lines, JSON or CSV corpus file, with their line (or element) numbers."""
    if path.is_dir():
        raise CorpusError(
            f"{path} is a directory: give corpus files (.jsonl, .ndjson, .json or .csv, optionally with .gz)"
        )
    fmt = corpus_format(path)
    if not path.exists():
        raise CorpusError(f"{path}: no such corpus file: the path does not exist")
    try:
        with _open_text(path) as handle:
            if fmt in (".jsonl", ".ndjson"):
                yield from _jsonl_records(handle)
            elif fmt == ".json":
                yield from _json_array_records(handle, path)
            else:
                yield from _csv_records(handle, path)
    except UnicodeDecodeError:
        raise CorpusError(_bad_byte(path, fmt)) from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise CorpusError(f"{path}: cannot be read as {fmt}: {exc}") from None
    except OSError as exc:
        raise CorpusError(f"{path}: cannot be read as {fmt}: {exc.strerror or exc}") from None


def _bad_byte(path: Path, fmt: str) -> str:
    """Where the first byte that is not UTF-8 lies, as 'file:line: ... column ...'.

    Called only after a decoding error, so that the normal path decodes in C
    at full speed. Lines are counted as the text reader counts them: a line
    ends at a newline, a carriage return and newline, or a lone carriage return.
    """
    line = 1
    with _open_binary(path) as raw:
        for chunk in raw:
            if line == 1 and chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError as exc:
                # The chunk ends at its first newline, so every carriage return
                # before the bad byte is a lone one: a line end of its own.
                pieces = chunk[: exc.start].split(b"\r")
                column = len(pieces[-1].decode("utf-8")) + 1
                return (
                    f"{path}:{line + len(pieces) - 1}: cannot be read as {fmt}: byte 0x{chunk[exc.start]:02x} "
                    f"at column {column} is not valid UTF-8 (save the file as UTF-8)"
                )
            line += 1 + chunk.count(b"\r") - chunk.count(b"\r\n")
    return f"{path}: cannot be read as {fmt}: it is not valid UTF-8 (save the file as UTF-8)"  # pragma: no cover


def _jsonl_records(handle: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            value = _loads(text.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            yield number, RecordError("malformed JSON", f"malformed JSON: {exc.msg} at column {exc.colno}")
            continue
        except RecursionError:
            yield number, RecordError("malformed JSON", "malformed JSON: nested too deeply")
            continue
        yield number, _as_object(value)


def _json_array_records(handle: io.TextIOBase, path: Path) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    text = handle.read()
    try:
        value = _loads(text)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise CorpusError(f"{path}:1: malformed JSON: nested too deeply") from None
    if isinstance(value, dict) and isinstance(value.get("articles"), list):
        value = value["articles"]
    if not isinstance(value, list):
        raise CorpusError(f"{path}:1: a .json corpus must hold an array of article objects, got {_type_name(value)}")
    # Report the position in the array as the "line": element numbers are what
    # a user can find in a pretty-printed or single-line file alike.
    for number, item in enumerate(value, start=1):
        yield number, _as_object(item)


def _csv_records(handle: io.TextIOBase, path: Path) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    csv.field_size_limit(MAX_FIELD_CHARS + 1)
    # strict: a quote still open at the end of the file, or text after a
    # closing quote, is an error instead of a silently merged record.
    reader = csv.reader(handle, strict=True)
    start = 1
    try:
        header = next(reader, None)
        if header is None:
            return
        names = _csv_header(header, path)
        while True:
            # A record may span lines (quoted newlines): it is reported at its
            # first line, where the user has to look.
            start = reader.line_num + 1
            row = next(reader, None)
            if row is None:
                return
            if not row:
                continue  # a blank line
            if len(row) > len(names):
                message = f"row has more cells than the header ({len(row)} cells, header has {len(names)})"
                yield start, RecordError("wrong type", message)
                continue
            record = {name: (cell if cell != "" else None) for name, cell in zip(names, row, strict=False) if name}
            nul = next((name for name, cell in record.items() if cell and "\x00" in cell), None)
            if nul is not None:
                message = f"{nul} holds a NUL character (is this a binary or UTF-16 file?)"
                yield start, RecordError("NUL character", message)
                continue
            yield start, record
    except csv.Error as exc:
        raise CorpusError(_csv_error(path, start, reader.line_num, exc)) from None


def _csv_header(header: list[str], path: Path) -> list[str]:
    names = [name.strip() for name in header]
    if "id" not in names:
        raise CorpusError(f"{path}:1: the CSV header must name an 'id' column, got {names!r}")
    for name in names:
        if name and names.count(name) > 1:
            raise CorpusError(f"{path}:1: the CSV header names {name!r} twice")
    return names


def _csv_error(path: Path, start: int, stopped: int, exc: csv.Error) -> str:
    # A syntax error leaves the parser inside a record: what follows cannot be
    # trusted, so the read stops even with on_error="skip".
    text = str(exc)
    if text.startswith("field larger than field limit"):
        return (
            f"{path}:{start}: malformed CSV: a field of the record starting on this line is over "
            f"{MAX_FIELD_CHARS + 1} characters (a quote never closed?); the parser stopped at line {stopped}"
        )
    if text == "unexpected end of data":
        return (
            f"{path}:{start}: malformed CSV: the record starting on this line ends inside a quoted field "
            f"(a quote is never closed; the parser reached line {stopped}, the end of the file)"
        )
    return (
        f"{path}:{start}: malformed CSV: {text} "
        f"(in the record starting on this line; the parser stopped at line {stopped})"
    )


def _as_object(value: Any) -> dict[str, Any] | RecordError:
    if not isinstance(value, dict):
        return RecordError("wrong type", f"a record must be a JSON object, got {_type_name(value)}")
    return value


def parse_record(raw: dict[str, Any]) -> Article:
    """Validate one raw record and build its :class:`Article`."""
    article_id = _parse_id(raw.get("id"))
    values: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        values[name] = _optional_str(raw, name)
    body_raw = _optional_str(raw, "body")
    title = clean_line(values.pop("title") or "")
    body = clean_text(body_raw or "")
    if not title and not body:
        raise RecordError("no text", f"article {article_id!r} has no text: title and body are both empty")
    section = _optional_str(raw, "section")
    if section is None:
        section = _optional_str(raw, "category")
    excerpt = values.pop("excerpt")
    excerpt = clean_line(excerpt) if excerpt else make_excerpt(body or title, EXCERPT_CHARS)
    extra = {k: v for k, v in raw.items() if k not in _KNOWN}
    for name, value in extra.items():
        long = _find_long_integer(value)
        if long is not None:
            raise RecordError(
                "too long",
                f"{name} holds an integer of {long.digits} digits: "
                f"numbers may have at most {sys.get_int_max_str_digits()} digits",
            )
    if "section" in raw and "category" in raw:
        extra["category"] = raw["category"]
    return Article(
        id=article_id,
        title=title,
        body=body,
        excerpt=excerpt,
        published_at=_parse_date(raw.get("published_at")),
        section=section.strip() if section else None,
        tags=_parse_tags(raw.get("tags")),
        extra=extra,
        **{k: (v.strip() if v else None) for k, v in values.items()},
    )


def _parse_id(value: Any) -> str:
    if value is None:
        raise RecordError("missing id", "missing id")
    rule = f"id must be at most {MAX_ID_CHARS} printable characters"
    if isinstance(value, _LongInteger):
        raise RecordError("bad id", f"{rule}, got an integer of {value.digits} digits")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordError("wrong type", f"id must be a string or an integer, got {_type_name(value)}")
    text = str(value).strip()
    if not text:
        raise RecordError("missing id", "missing id: id is empty")
    if len(text) > MAX_ID_CHARS:
        if isinstance(value, int):
            raise RecordError("bad id", f"{rule}, got an integer of {len(text.lstrip('-'))} digits")
        raise RecordError("bad id", f"{rule}, got {len(text)} characters: {text[:20]!r}...")
    if not text.isprintable():
        raise RecordError("bad id", f"{rule}, got {text[:40]!r}")
    return text


def _optional_str(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError("wrong type", f"{name} must be a string, got {_type_name(value)}")
    if len(value) > MAX_FIELD_CHARS:
        raise RecordError("too long", f"{name} must be at most {MAX_FIELD_CHARS} characters, got {len(value)}")
    return value


def _parse_date(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RecordError("wrong type", f"published_at must be an ISO 8601 string, got {_type_name(value)}")
    return normalize_date(value)


def normalize_date(value: str) -> str:
    """An ISO 8601 date or datetime, normalised ('2026-01-02' or '2026-01-02T03:04:05+00:00')."""
    try:
        return parse_iso(value, "published_at").isoformat()
    except InvalidInputError as exc:
        raise RecordError("bad date", str(exc)) from None


def _parse_tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        raise RecordError("wrong type", f"tags must be a list or a comma-separated string, got {_type_name(value)}")
    tags: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise RecordError("wrong type", f"each tag must be a string, got {_type_name(item)}")
        tag = item.strip()
        if tag and tag not in tags:
            tags.append(tag)
    return tuple(tags)
