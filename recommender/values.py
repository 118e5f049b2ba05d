"""The values a query takes and returns: limits, filters, items, results."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import numpy as np

from .errors import InvalidInputError

MAX_LIMIT = 100
# What the product promises of a score: within this of the float64 cosine (or
# blend) computed by brute force, whatever the CPU, BLAS kernel or chunking.
# Two scores closer than this are a tie; either article may come first.
SCORE_TOLERANCE = 1e-6


def check_limit(limit: Any, maximum: int = MAX_LIMIT) -> int:
    """``limit`` as an int in [1, maximum], or InvalidInputError naming the rule."""
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or not 1 <= limit <= maximum:
        raise InvalidInputError(f"limit must be an integer in [1, {maximum}], got {limit!r}")
    return int(limit)


def check_language(value: str | None) -> str | None:
    """A language filter: None (the query's language), 'any', or a language code, normalised."""
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if text == "any":
        return "any"
    primary = text.replace("_", "-").split("-", 1)[0]
    if not (2 <= len(primary) <= 3 and primary.isascii() and primary.isalpha()):
        raise InvalidInputError(f"language must be a language code such as 'en' or 'any', got {str(value)[:40]!r}")
    return primary


def parse_iso(value: str, name: str) -> date | datetime:
    """An ISO 8601 date ('2026-03-01') or datetime ('2026-03-01T08:00:00Z'); InvalidInputError naming ``name``.

    The one parser of dates: corpus records, filters and stored publication times all go through it.
    """
    text = str(value).strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"{name} must be an ISO 8601 date or datetime, got {str(value)[:40]!r}") from None


def parse_when(value: str | date | datetime | None, name: str) -> float | None:
    """An ISO 8601 date/datetime (or date object) as epoch seconds, UTC when naive."""
    if value is None or value == "":
        return None
    parsed = value if isinstance(value, (date, datetime)) else parse_iso(value, name)
    if not isinstance(parsed, datetime):
        parsed = datetime(parsed.year, parsed.month, parsed.day)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@dataclass(frozen=True)
class Filters:
    """Restrictions on which articles may appear in a list."""

    section: str | None = None
    tags: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    published_after: float | None = None
    published_before: float | None = None
    # None: the articles of the query's own language; "any": every language; or a language code.
    language: str | None = None

    @classmethod
    def build(
        cls,
        *,
        section: str | None = None,
        tags: Iterable[str] = (),
        exclude: Iterable[str] = (),
        published_after: Any = None,
        published_before: Any = None,
        language: str | None = None,
    ) -> Filters:
        """Validate raw values (dates as ISO strings) into a Filters."""
        return cls(
            language=check_language(language),
            section=section or None,
            tags=tuple(t.strip().lower() for t in tags if t and t.strip()),
            exclude=tuple(exclude),
            published_after=parse_when(published_after, "published_after"),
            published_before=parse_when(published_before, "published_before"),
        )

    @property
    def restricts(self) -> bool:
        """True when some article could be filtered out (exclusions aside)."""
        return bool(self.section or self.tags or self.published_after is not None or self.published_before is not None)


NO_FILTERS = Filters()


@dataclass(frozen=True, slots=True)
class Contribution:
    """One shared term and its share of the lexical (TF-IDF cosine) score."""

    term: str
    contribution: float


class RelatedItem(NamedTuple):
    """One related article: its row in the bundle, its id and its score.

    ``why`` (when asked for) lists the shared terms that contributed most to
    the lexical score; ``fallback`` marks an item that did not clear the
    minimum similarity and was added only because the caller asked to fill
    the list. (A named tuple: lists are built per request, and it is the
    cheapest immutable record to make.)
    """

    index: int  # type: ignore[assignment]  # the row number; shadows tuple.index, which no caller needs
    id: str
    score: float
    why: tuple[Contribution, ...] | None = None
    fallback: bool = False

    def extra(self) -> dict[str, Any]:
        """The optional fields, as they appear in JSON."""
        out: dict[str, Any] = {}
        if self.why is not None:
            out["why"] = [{"term": c.term, "contribution": round(c.contribution, 6)} for c in self.why]
        if self.fallback:
            out["fallback"] = True
        return out


@dataclass(frozen=True)
class RelatedResult:
    """A related list and the model that produced it."""

    model_version: str
    source_id: str | None
    items: list[RelatedItem] = field(default_factory=list)
    collapsed: int = 0
    # True when the list read more than the source's precomputed one (an on-demand search,
    # the fallback): it may then change with any write, not only with those touching the source.
    searched: bool = False
