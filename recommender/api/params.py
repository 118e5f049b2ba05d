"""Query-string parsing for the hot GET routes.

FastAPI's per-parameter validation costs more than the whole lookup of a
precomputed list, so the list routes read their query string here, with the
same rules the OpenAPI description states (``openapi_parameters``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from ..errors import InvalidInputError
from ..values import Filters, check_limit

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
# The query parameters each GET route reads; any other one is refused (it would
# otherwise make a new response-cache entry per spelling).
LIST_PARAMETERS = (
    "limit", "section", "tag", "exclude", "published_after", "published_before", "language", "explain", "fallback",
)  # fmt: skip
FRAGMENT_PARAMETERS = ("limit", "section", "tag", "exclude", "language")
_MAX_LIMIT_DIGITS = 18


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The parameters of a related-list request."""

    limit: int
    filters: Filters
    explain: bool = False
    fallback: bool = False

    def key(self) -> bytes:
        """The request in a normal form: equal for every spelling of the same question.

        Tags and exclusions are sets (their order and repeats do not change the
        answer); tags are already lower-cased and stripped by ``Filters.build``.
        """
        f = self.filters
        normal = (
            self.limit,
            f.section,
            tuple(sorted(set(f.tags))),
            tuple(sorted(set(f.exclude))),
            f.published_after,
            f.published_before,
            f.language,
            self.explain,
            self.fallback,
        )
        return repr(normal).encode()


def limit_value(value: Any, default: int, maximum: int) -> int:
    """The one limit rule of the API (GET and POST): ``default`` when absent, else an integer in [1, maximum]."""
    if value is None:
        return default
    return check_limit(value, maximum)


def _number(text: str) -> int | str:
    """A query-string value as an int when it is plain ASCII digits, else the text (cut) for the message.

    ``int()`` alone would also take ``3_0``, `` 3``, ``+3`` and non-ASCII digits.
    """
    digits = text.removeprefix("-")  # a negative number is shown as a number: "got -3"
    if digits.isascii() and digits.isdigit() and len(digits) <= _MAX_LIMIT_DIGITS:
        return int(text)
    return text[:40]


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidInputError(f"{name} must be a boolean (true or false), got {value[:40]!r}")


def refuse_unknown(names: Iterable[str], allowed: tuple[str, ...]) -> None:
    """InvalidInputError naming the query parameters not in ``allowed``."""
    unknown = sorted({name for name in names if name not in allowed})
    if not unknown:
        return
    shown = ", ".join(repr(name[:40]) for name in unknown[:10])
    noun = "parameter" if len(unknown) == 1 else "parameters"
    raise InvalidInputError(f"unknown query {noun} {shown}; allowed: {', '.join(allowed) or 'none'}")


def query_names(query_string: bytes) -> list[str]:
    """The parameter names of a query string."""
    return [key for key, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)]


def parse_list_query(
    query_string: bytes, *, default_limit: int, max_limit: int, allowed: tuple[str, ...] = LIST_PARAMETERS
) -> ListQuery:
    """Validate a list route's query string; InvalidInputError (422) names the parameter and rule."""
    if not query_string:
        return ListQuery(default_limit, Filters())
    values: dict[str, list[str]] = {}
    for key, value in parse_qsl(
        query_string.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace"
    ):
        values.setdefault(key, []).append(value)
    refuse_unknown(values, allowed)

    def one(name: str) -> str | None:
        got = values.get(name)
        return got[-1] if got else None

    limit_text = one("limit")
    limit = limit_value(None if limit_text is None else _number(limit_text), default_limit, max_limit)
    filters = Filters.build(
        section=one("section"),
        tags=values.get("tag", ()),
        exclude=values.get("exclude", ()),
        published_after=one("published_after"),
        published_before=one("published_before"),
        language=one("language"),
    )
    return ListQuery(
        limit,
        filters,
        _flag("explain", one("explain") or "false"),
        _flag("fallback", one("fallback") or "false"),
    )


def openapi_parameters(
    *, max_limit: int, default_limit: int, dates: bool = True, flags: bool = True
) -> list[dict[str, Any]]:
    """The OpenAPI description of what :func:`parse_list_query` accepts."""
    string = {"type": "string"}
    params: list[dict[str, Any]] = [
        {"name": "article_id", "in": "path", "required": True, "schema": string},
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": max_limit, "default": default_limit},
            "description": f"items (1..{max_limit})",
        },
        {
            "name": "section",
            "in": "query",
            "required": False,
            "schema": string,
            "description": "only articles of this section",
        },
        {
            "name": "language",
            "in": "query",
            "required": False,
            "schema": string,
            "description": "only articles of this language (ISO 639-1), or 'any'; default: the article's own",
        },
        {
            "name": "tag",
            "in": "query",
            "required": False,
            "schema": {"type": "array", "items": string},
            "style": "form",
            "explode": True,
            "description": "only articles with any of these tags (repeatable)",
        },
        {
            "name": "exclude",
            "in": "query",
            "required": False,
            "schema": {"type": "array", "items": string},
            "style": "form",
            "explode": True,
            "description": "never these article ids (repeatable)",
        },
    ]
    if dates:
        for name in ("published_after", "published_before"):
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "schema": string,
                    "description": "ISO 8601 date or datetime",
                }
            )
    if flags:
        params.append(
            {
                "name": "explain",
                "in": "query",
                "required": False,
                "schema": {"type": "boolean", "default": False},
                "description": "add `why`: the shared terms behind each score",
            }
        )
        params.append(
            {
                "name": "fallback",
                "in": "query",
                "required": False,
                "schema": {"type": "boolean", "default": False},
                "description": "fill a short list with the newest articles of the section, flagged",
            }
        )
    return params
