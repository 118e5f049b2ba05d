"""Request bodies of the write routes: one article (a JSON object) or a batch (JSON Lines).

An article is checked with the corpus reader's own rules
(:func:`recommender.corpus.parse_record`), so a record the API refuses is one
``recommender train`` would refuse, with the same message. What is logged is
the parsed article's record (:func:`recommender.corpus.article_record`).
"""

from __future__ import annotations

import io
import json
from typing import Any

from fastapi.exceptions import HTTPException, RequestValidationError

from ..corpus import Article, RecordError, article_record, load_json, parse_record, type_name
from ..sources.files import jsonl_records

# Starlette's answer to a body it cannot decode (POST /v1/related gives it too).
NOT_UTF8 = "There was an error parsing the body"
Upsert = tuple[str, dict[str, Any]]  # an article id and its record


def read_article(body: bytes, article_id: str) -> Article:
    """The article of a PUT body for ``article_id``; 400 or 422 (naming the field) when it breaks a rule."""
    if not body.strip():
        raise HTTPException(422, "request body is empty: send the article as a JSON object")
    try:
        value = load_json(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise HTTPException(400, NOT_UTF8) from None
    except json.JSONDecodeError as exc:
        # The error FastAPI raises for a JSON body it cannot decode: the same 422 as POST /v1/related.
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "ctx": {"error": exc.msg}}]
        ) from None
    except RecursionError:
        raise HTTPException(422, "request body is not valid JSON: nested too deeply") from None
    if not isinstance(value, dict):
        raise HTTPException(422, f"the article must be a JSON object, got {type_name(value)}")
    given = value.get("id")
    try:
        article = parse_record(value if given is not None else {**value, "id": article_id})
    except RecordError as exc:
        raise HTTPException(422, exc.message) from None
    if article.id != article_id:
        if given is not None:
            raise HTTPException(422, f"id in the body ({article.id!r}) must equal the id in the path ({article_id!r})")
        raise HTTPException(422, f"id in the path must not start or end with spaces, got {article_id!r}")
    return article


def read_batch(body: bytes) -> list[Upsert]:
    """The articles of a JSON Lines batch, as (id, record); the first bad line is a 400 or 422 "line N: ..."."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        start = body.rfind(b"\n", 0, exc.start) + 1
        column = len(body[start : exc.start].decode("utf-8", "replace")) + 1
        raise HTTPException(
            400, f"line {line}: byte 0x{body[exc.start]:02x} at column {column} is not valid UTF-8"
        ) from None
    upserts: list[Upsert] = []
    seen: dict[str, int] = {}
    # newline="": lines end where a corpus file's lines end (\n, \r\n or \r), so the numbers match.
    for line, raw in jsonl_records(io.StringIO(text, newline="")):
        try:
            if isinstance(raw, RecordError):
                raise raw
            article = parse_record(raw)
            if article.id in seen:
                first = seen[article.id]
                raise RecordError("duplicate id", f"duplicate id {article.id!r} (first seen at line {first})")
        except RecordError as exc:
            raise HTTPException(422, f"line {line}: {exc.message}") from None
        seen[article.id] = line
        upserts.append((article.id, article_record(article)))
    if not upserts:
        raise HTTPException(422, "request body holds no article: send one JSON object per line")
    return upserts
