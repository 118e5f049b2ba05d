"""Read article corpora: JSON Lines, JSON arrays and CSV, gzip-compressed or not.

Every record is validated and turned into an :class:`Article`. A bad record
gets a message naming the file, the line and the rule it breaks; the caller
chooses to stop at the first one (``on_error="fail"``) or to skip bad records
and get a grouped account of what was skipped (``on_error="skip"``).
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import CorpusError, InvalidInputError
from .text import clean_line, clean_text, escape_line, escape_text, make_excerpt
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
load_json = json.JSONDecoder(parse_int=_json_int).decode


def type_name(value: Any) -> str:
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
    # A blank excerpt (or a blank url, author...) is no value: derived (or None) as when absent.
    excerpt = clean_line(values.pop("excerpt") or "") or make_excerpt(body or title, EXCERPT_CHARS)
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
        section=section.strip() or None if section else None,
        tags=_parse_tags(raw.get("tags")),
        extra=extra,
        **{k: v.strip() or None if v else None for k, v in values.items()},
    )


def article_record(article: Article) -> dict[str, Any]:
    """A raw record of ``article`` that :func:`parse_record` reads back as the same article.

    What the change log and a bundle's ``articles.jsonl`` store. Fields are
    already clean; the few characters cleaning would decode again ('&' of an
    entity, '<' of a tag) are escaped, and the excerpt is kept even when it was
    derived. JSON-able when the extra fields are (they are for every source).
    """
    record: dict[str, Any] = {
        **article.extra,
        "id": article.id,
        "title": escape_line(article.title),
        "body": escape_text(article.body),
        "excerpt": escape_line(article.excerpt) if article.excerpt is not None else None,
        "url": article.url,
        "image": article.image,
        "published_at": article.published_at,
        "section": article.section,
        "tags": list(article.tags),
        "author": article.author,
        "language": article.language,
    }
    if "category" in article.extra and article.section is None:
        # Beside a category, a blank section says "no section" (None would let the category be one).
        record["section"] = ""
    return record


def _parse_id(value: Any) -> str:
    if value is None:
        raise RecordError("missing id", "missing id")
    rule = f"id must be at most {MAX_ID_CHARS} printable characters"
    if isinstance(value, _LongInteger):
        raise RecordError("bad id", f"{rule}, got an integer of {value.digits} digits")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordError("wrong type", f"id must be a string or an integer, got {type_name(value)}")
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
        raise RecordError("wrong type", f"{name} must be a string, got {type_name(value)}")
    if len(value) > MAX_FIELD_CHARS:
        raise RecordError("too long", f"{name} must be at most {MAX_FIELD_CHARS} characters, got {len(value)}")
    return value


def _parse_date(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RecordError("wrong type", f"published_at must be an ISO 8601 string, got {type_name(value)}")
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
        raise RecordError("wrong type", f"tags must be a list or a comma-separated string, got {type_name(value)}")
    tags: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise RecordError("wrong type", f"each tag must be a string, got {type_name(item)}")
        tag = item.strip()
        if tag and tag not in tags:
            tags.append(tag)
    return tuple(tags)
