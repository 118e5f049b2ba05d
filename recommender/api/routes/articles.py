"""One article: its stored metadata; adding, replacing and deleting it (live writes, with the admin token)."""

# No "from __future__ import annotations": FastAPI reads these annotations at run time.

import urllib.parse

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ...corpus import article_record
from ...errors import UnknownArticleError
from ..conditional import cache_key, etag_of, not_modified
from ..deps import HolderDep, SettingsDep, WriterDep, current_model
from ..openapi import ERRORS, WRITE_ERRORS
from ..params import query_names, refuse_unknown
from ..records import read_article
from ..schemas import Article, ArticleRecord, Error, Written
from ..state import created_by
from .admin import ADMIN_ERRORS, Authorization, check_admin

router = APIRouter()
WRITING = "writing articles"


@router.get(
    "/v1/articles/{article_id:path}",
    response_model=Article,
    responses=ERRORS,
    tags=["articles"],
    summary="The stored metadata of one article",
)
async def article(request: Request, article_id: str) -> Response:
    rec = current_model(request)
    if request.scope["query_string"]:
        refuse_unknown(query_names(request.scope["query_string"]), ())
    etag = etag_of(rec, cache_key(rec, request.scope, b""))
    cache_control = request.app.state.cache_control
    ready = not_modified(request.scope, etag, cache_control)
    if ready:
        return ready
    body = rec.metadata_bytes(rec.index_for(article_id))
    return Response(body, media_type="application/json", headers={"ETag": etag, "Cache-Control": cache_control})


@router.put(
    "/v1/articles/{article_id:path}",
    response_model=Written,
    status_code=200,
    responses={
        201: {"model": Written, "description": "a new article"},
        **ADMIN_ERRORS,
        **WRITE_ERRORS,
    },
    tags=["articles"],
    summary="Add or replace an article",
    description="The body is one article of the corpus format (a JSON Lines corpus line); its `id` may be left "
    "out, and must be the path's id if given. 201 for a new id, 200 for a replaced article. The article is "
    "in the change log (durable) before the answer; every worker serves it within about "
    "RECOMMENDER_LOG_POLL_INTERVAL seconds.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ArticleRecord.model_json_schema()}},
        }
    },
)
async def put_article(
    request: Request,
    article_id: str,
    holder: HolderDep,
    settings: SettingsDep,
    writer: WriterDep,
    authorization: Authorization = None,
) -> JSONResponse:
    check_admin(authorization, settings, WRITING)
    rec = current_model(request)
    article = read_article(await request.body(), article_id)
    existed = article.id in rec
    seq = await writer.append("upsert", article.id, article_record(article))
    holder.sync()
    rec = current_model(request)
    created = created_by(holder, seq, existed)
    headers = {"Location": "/v1/articles/" + urllib.parse.quote(article.id, safe="/")} if created else None
    return JSONResponse(
        {"id": article.id, "seq": seq, "model_version": rec.version},
        status_code=201 if created else 200,
        headers=headers,
    )


@router.delete(
    "/v1/articles/{article_id:path}",
    status_code=204,
    response_class=Response,
    responses={
        **ADMIN_ERRORS,
        404: {"model": Error, "description": "unknown article, or no admin token"},
        503: WRITE_ERRORS[503],
    },
    tags=["articles"],
    summary="Delete an article",
    description="It leaves every related list at once (the lists refill from their next candidates). An "
    "unknown id is a 404 and nothing is logged.",
)
async def delete_article(
    request: Request,
    article_id: str,
    holder: HolderDep,
    settings: SettingsDep,
    writer: WriterDep,
    authorization: Authorization = None,
) -> Response:
    check_admin(authorization, settings, WRITING)
    current_model(request)
    holder.sync()  # an article written through another worker may be deleted here at once
    if article_id not in current_model(request):
        raise UnknownArticleError(article_id)
    await writer.append("delete", article_id)
    holder.sync()
    return Response(status_code=204)
