"""One article's stored metadata."""

# No "from __future__ import annotations": FastAPI reads these annotations at run time.

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..conditional import cache_key, etag_of, not_modified
from ..deps import current_model
from ..openapi import ERRORS
from ..params import query_names, refuse_unknown
from ..schemas import Article

router = APIRouter()


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
