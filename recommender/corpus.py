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
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from .errors import CorpusError, InvalidInputError
from .text import clean_line, clean_text, make_excerpt

FORMATS = (".jsonl", ".ndjson", ".json", ".csv")
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
    line: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


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


class _RecordError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def read_corpus(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], on_error: str = "fail"
) -> CorpusReport:
    """Read and validate one or more corpus files.

    ``on_error="fail"`` raises :class:`CorpusError` at the first bad record;
    ``"skip"`` leaves bad records out and lists them in the report. An empty
    result is always an error: there is nothing to train on.
    """
    if on_error not in ("fail", "skip"):
        raise InvalidInputError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise InvalidInputError("at least one corpus file is needed")
    articles: list[Article] = []
    skipped: list[Problem] = []
    seen: dict[str, str] = {}
    for path in paths:
        name = str(path)
        for line, raw in _records(Path(path)):
            try:
                if isinstance(raw, _RecordError):
                    raise raw
                article = parse_record(raw)
                if article.id in seen:
                    raise _RecordError(
                        "duplicate id", f"duplicate id {article.id!r} (first seen at {seen[article.id]})"
                    )
            except _RecordError as exc:
                problem = Problem(name, line, exc.kind, exc.message)
                if on_error == "fail":
                    raise CorpusError(str(problem)) from None
                skipped.append(problem)
                continue
            seen[article.id] = f"{name}:{line}"
            articles.append(article)
    if not articles:
        names = ", ".join(str(p) for p in paths)
        why = f" ({len(skipped)} bad record(s) skipped)" if skipped else ""
        raise CorpusError(f"corpus is empty: no valid articles in {names}{why}")
    return CorpusReport(articles, skipped)


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")  # type: ignore[return-value]
    return open(path, encoding="utf-8", newline="")


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


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any] | _RecordError]]:
    fmt = corpus_format(path)
    if not path.is_file():
        raise CorpusError(f"{path}: no such corpus file")
    try:
        with _open_text(path) as handle:
            if fmt in (".jsonl", ".ndjson"):
                yield from _jsonl_records(handle)
            elif fmt == ".json":
                yield from _json_array_records(handle, path)
            else:
                yield from _csv_records(handle)
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, OSError) as exc:
        raise CorpusError(f"{path}: cannot be read as {fmt}: {exc}") from None


def _jsonl_records(handle: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | _RecordError]]:
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            yield number, _RecordError("malformed JSON", f"malformed JSON: {exc.msg} at column {exc.colno}")
            continue
        yield number, _as_object(value)


def _json_array_records(handle: io.TextIOBase, path: Path) -> Iterator[tuple[int, dict[str, Any] | _RecordError]]:
    text = handle.read()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg} at column {exc.colno}") from None
    if isinstance(value, dict) and isinstance(value.get("articles"), list):
        value = value["articles"]
    if not isinstance(value, list):
        raise CorpusError(f"{path}:1: a .json corpus must hold an array of article objects, got {type(value).__name__}")
    # Report the position in the array as the "line": element numbers are what
    # a user can find in a pretty-printed or single-line file alike.
    for number, item in enumerate(value, start=1):
        yield number, _as_object(item)


def _csv_records(handle: io.TextIOBase) -> Iterator[tuple[int, dict[str, Any] | _RecordError]]:
    csv.field_size_limit(MAX_FIELD_CHARS + 1)
    reader = csv.DictReader(handle)
    for row in reader:
        # The header is line 1; DictReader's line_num counts physical lines read.
        line = reader.line_num
        if None in row:
            yield line, _RecordError("wrong type", "row has more cells than the header")
            continue
        yield line, {k: (v if v != "" else None) for k, v in row.items() if k}


def _as_object(value: Any) -> dict[str, Any] | _RecordError:
    if not isinstance(value, dict):
        return _RecordError("wrong type", f"a record must be a JSON object, got {type(value).__name__}")
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
        raise _RecordError("no text", f"article {article_id!r} has no text: title and body are both empty")
    section = _optional_str(raw, "section")
    if section is None:
        section = _optional_str(raw, "category")
    excerpt = values.pop("excerpt")
    excerpt = clean_line(excerpt) if excerpt else make_excerpt(body or title, EXCERPT_CHARS)
    extra = {k: v for k, v in raw.items() if k not in _KNOWN}
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
        raise _RecordError("missing id", "missing id")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _RecordError("wrong type", f"id must be a string or an integer, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise _RecordError("missing id", "missing id: id is empty")
    if len(text) > MAX_ID_CHARS or not text.isprintable():
        raise _RecordError("bad id", f"id must be at most {MAX_ID_CHARS} printable characters, got {text[:40]!r}")
    return text


def _optional_str(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _RecordError("wrong type", f"{name} must be a string, got {type(value).__name__}")
    if len(value) > MAX_FIELD_CHARS:
        raise _RecordError("too long", f"{name} must be at most {MAX_FIELD_CHARS} characters, got {len(value)}")
    return value


def _parse_date(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _RecordError("wrong type", f"published_at must be an ISO 8601 string, got {type(value).__name__}")
    return normalize_date(value)


def normalize_date(value: str) -> str:
    """An ISO 8601 date or datetime, normalised ('2026-01-02' or '2026-01-02T03:04:05+00:00')."""
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text).isoformat()
        return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
    except ValueError:
        raise _RecordError(
            "bad date", f"published_at must be an ISO 8601 date or datetime, got {value[:40]!r}"
        ) from None


def _parse_tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        raise _RecordError("wrong type", f"tags must be a list or a comma-separated string, got {type(value).__name__}")
    tags: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise _RecordError("wrong type", f"each tag must be a string, got {type(item).__name__}")
        tag = item.strip()
        if tag and tag not in tags:
            tags.append(tag)
    return tuple(tags)
