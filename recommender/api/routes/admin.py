"""Administration: load the current bundle from disk, write a batch of articles; the admin token's check."""

# No "from __future__ import annotations": FastAPI reads these annotations at run time.

import asyncio
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.exceptions import HTTPException

from ...errors import BundleError
from ..deps import HolderDep, SettingsDep, WriterDep, current_model
from ..openapi import WRITE_ERRORS
from ..records import read_batch
from ..schemas import ArticleRecord, BatchWritten, Error
from ..settings import Settings
from ..state import created_by

router = APIRouter(tags=["service"])


Authorization = Annotated[str | None, Header(description="`Bearer <admin token>`")]
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Error, "description": "no bearer token"},
    403: {"model": Error, "description": "wrong token"},
    404: {"model": Error, "description": "no admin token is configured"},
}


def check_admin(authorization: str | None, settings: Settings, what: str = "reload") -> None:
    """404 without a configured token, 401 without a bearer token, 403 with a wrong one.

    The scheme name is case-insensitive (RFC 7235): ``Bearer``, ``bearer``
    and ``BEARER`` are the same. ``what`` names the disabled feature in the 404.
    """
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    if token is None:
        raise HTTPException(404, f"{what} is disabled: no admin token is configured")
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        raise HTTPException(
            401,
            "admin token required: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(credentials.strip(" ").encode(), token.encode()):
        raise HTTPException(403, "wrong admin token")


@router.post(
    "/v1/admin/reload",
    summary="Load the current bundle from disk",
    description="This worker loads models/current at once; the other workers of the service follow "
    "within a second (each watches models/current).",
    responses={**ADMIN_ERRORS, 409: {"model": Error, "description": "the bundle failed verification"}},
)
async def reload(holder: HolderDep, settings: SettingsDep, authorization: Authorization = None) -> dict[str, Any]:
    check_admin(authorization, settings)
    previous = holder.current.version if holder.current else None
    try:
        rec = await holder.reload()
    except BundleError as exc:
        raise HTTPException(409, f"bundle refused, still serving {previous}: {exc}") from None
    return {"model_version": rec.version, "previous": previous}


BATCH_MEDIA = "application/x-ndjson"
_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "description": "JSON Lines: one article per line, as in a corpus file (blank lines are skipped); "
        "its schema is that of the lines",
        "content": {BATCH_MEDIA: {"schema": {"type": "array", "items": ArticleRecord.model_json_schema()}}},
    }
}


@router.post(
    "/v1/admin/articles",
    tags=["articles"],
    summary="Add or replace many articles at once",
    description="All or nothing: the first bad line (or an id seen twice) is a 422 `line N: ...` and nothing "
    "is written. Every article is in the change log (durable) before the answer; every worker serves it "
    "within about RECOMMENDER_LOG_POLL_INTERVAL seconds.",
    response_model=BatchWritten,
    responses={**ADMIN_ERRORS, **WRITE_ERRORS},
    openapi_extra=_BATCH_BODY,
)
async def write_batch(
    request: Request, holder: HolderDep, settings: SettingsDep, writer: WriterDep, authorization: Authorization = None
) -> dict[str, Any]:
    check_admin(authorization, settings, "writing articles")
    rec = current_model(request)
    upserts = await asyncio.to_thread(read_batch, await request.body())
    existed = [article_id in rec for article_id, _ in upserts]
    seqs = await writer.append_many([("upsert", article_id, record) for article_id, record in upserts])
    holder.sync()
    rec = current_model(request)
    created = sum(created_by(holder, seq, was) for seq, was in zip(seqs, existed, strict=True))
    return {
        "model_version": rec.version,
        "articles": len(seqs),
        "created": created,
        "replaced": len(seqs) - created,
        "first_seq": seqs[0],
        "last_seq": seqs[-1],
    }
