"""Query-string parsing for the hot GET routes.

FastAPI's per-parameter validation costs more than the whole lookup of a
precomputed list, so the list routes read their query string here, with the
same rules the OpenAPI description states (``openapi_parameters``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from ..errors import InvalidInputError
from ..values import Filters

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass
class ListQuery:
    """The parameters of a related-list request."""

    limit: int
    filters: Filters
    explain: bool = False
    fallback: bool = False
    raw: dict[str, list[str]] = field(default_factory=dict)


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidInputError(f"{name} must be a boolean (true or false), got {value[:40]!r}")


def _limit(value: str, maximum: int) -> int:
    try:
        limit = int(value.strip())
    except ValueError:
        raise InvalidInputError(f"limit must be an integer in [1, {maximum}], got {value[:40]!r}") from None
    if not 1 <= limit <= maximum:
        raise InvalidInputError(f"limit must be an integer in [1, {maximum}], got {limit}")
    return limit


def parse_list_query(query_string: bytes, *, default_limit: int, max_limit: int, dates: bool = True) -> ListQuery:
    """Validate a list route's query string; InvalidInputError (422) names the parameter and rule."""
    if not query_string:
        return ListQuery(default_limit, Filters())
    values: dict[str, list[str]] = {}
    for key, value in parse_qsl(
        query_string.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace"
    ):
        values.setdefault(key, []).append(value)

    def one(name: str) -> str | None:
        got = values.get(name)
        return got[-1] if got else None

    limit_text = one("limit")
    limit = _limit(limit_text, max_limit) if limit_text is not None else default_limit
    filters = Filters.build(
        section=one("section"),
        tags=values.get("tag", ()),
        exclude=values.get("exclude", ()),
        published_after=one("published_after") if dates else None,
        published_before=one("published_before") if dates else None,
    )
    explain = _flag("explain", one("explain") or "false")
    fallback = _flag("fallback", one("fallback") or "false")
    return ListQuery(limit, filters, explain, fallback, values)


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
