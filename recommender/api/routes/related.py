"""The related lists: of a corpus article (JSON, and the HTML box) and of a draft."""

# No "from __future__ import annotations": FastAPI reads these annotations at run time.

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from ...recommend import Filters, Recommender, RelatedResult
from ..conditional import cache_key, etag_of, not_modified
from ..deps import ModelDep, SettingsDep, current_model
from ..openapi import ERRORS, JSON_ERRORS
from ..params import FRAGMENT_PARAMETERS, ListQuery, limit_value, parse_list_query
from ..render import related_html, related_json
from ..schemas import Error, RelatedRequest, RelatedResponse

FRAGMENT_LIMIT = 3  # the HTML box's default length
HTML = "text/html; charset=utf-8"
JSON = "application/json"

router = APIRouter()


_VERSION_FIELD = b'{"model_version":"'


class _Keys:
    """A list request's two cache keys: by the model's version, and by the version of the source's own list.

    Between two writes every answer is keyed by the model version. An answer
    built from the source's precomputed list alone stays right until a write
    changes that list (:meth:`Recommender.list_version`), so it is also kept
    under the list's version, and a write elsewhere does not throw it away;
    its ``model_version`` is brought up to date when it is served again.
    """

    def __init__(self, request: Request, rec: Recommender, query: ListQuery) -> None:
        query_key = query.key()
        self.model = cache_key(rec, request.scope, query_key)
        self.list: bytes | None = None
        if rec.live is not None:
            self.list = cache_key(rec, request.scope, query_key, rec.list_version(request.path_params["article_id"]))

    def lookup(self, request: Request, rec: Recommender) -> bytes | None:
        responses = request.app.state.responses
        body = responses.get(self.model)
        if body is None and self.list is not None:
            body = responses.get(self.list)
            if body is not None and body.startswith(_VERSION_FIELD):
                end = body.index(b'"', len(_VERSION_FIELD))
                body = _VERSION_FIELD + rec.version.encode() + body[end:]
        return body

    def for_result(self, result: RelatedResult) -> bytes:
        return self.list if self.list is not None and not result.searched else self.model


def _cached(
    request: Request, rec: Recommender, query: ListQuery, media_type: str
) -> tuple[_Keys, str, Response | None]:
    """The request's cache keys and ETag, and a ready answer (304 or a cached body) if there is one."""
    state = request.app.state
    keys = _Keys(request, rec, query)
    etag = etag_of(rec, keys.model)
    ready = not_modified(request.scope, etag, state.cache_control)
    if ready is None:
        body = keys.lookup(request, rec)
        if body is not None:
            ready = Response(body, media_type=media_type, headers={"ETag": etag, "Cache-Control": state.cache_control})
    return keys, etag, ready


def _store(request: Request, key: bytes, etag: str, body: bytes, media_type: str) -> Response:
    state = request.app.state
    state.responses.put(key, body)
    return Response(body, media_type=media_type, headers={"ETag": etag, "Cache-Control": state.cache_control})


# The GET list routes read their query string with parse_list_query (documented
# through openapi_extra, see create_app): FastAPI's per-parameter validation
# would cost more than the lookup itself on these, the hottest routes.


@router.get(
    "/v1/articles/{article_id:path}/related.html",
    response_class=HTMLResponse,
    responses=JSON_ERRORS,
    tags=["widget"],
    summary="The related box as an HTML fragment",
)
async def related_fragment(request: Request) -> Response:
    rec = current_model(request)
    query = parse_list_query(
        request.scope["query_string"],
        default_limit=FRAGMENT_LIMIT,
        max_limit=request.app.state.settings.max_limit,
        allowed=FRAGMENT_PARAMETERS,
    )
    keys, etag, ready = _cached(request, rec, query, HTML)
    if ready:
        return ready
    result = rec.related(request.path_params["article_id"], query.limit, query.filters)
    return _store(request, keys.for_result(result), etag, related_html(rec.describe(result.items)).encode(), HTML)


@router.get(
    "/v1/articles/{article_id:path}/related",
    response_model=RelatedResponse,
    responses=ERRORS,
    tags=["related"],
    summary="Related articles of a corpus article",
)
async def related(request: Request) -> Response:
    rec = current_model(request)
    settings = request.app.state.settings
    query = parse_list_query(
        request.scope["query_string"], default_limit=settings.default_limit, max_limit=settings.max_limit
    )
    keys, etag, ready = _cached(request, rec, query, JSON)
    if ready:
        return ready
    result = rec.related(
        request.path_params["article_id"], query.limit, query.filters, explain=query.explain, fallback=query.fallback
    )
    return _store(request, keys.for_result(result), etag, related_json(rec, result), JSON)


_POST_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    413: {"model": Error, "description": "body too large"},
    415: {"model": Error, "description": "body is not JSON"},
    400: {"model": Error, "description": "body is not valid UTF-8"},
    408: {"model": Error, "description": "body not received in time"},
}


@router.post(
    "/v1/related",
    response_model=RelatedResponse,
    tags=["related"],
    responses=_POST_ERRORS,
    summary="Related articles of a draft or any text",
)
async def related_text(payload: RelatedRequest, rec: ModelDep, settings: SettingsDep) -> Response:
    result = rec.related_to_text(
        payload.title,
        payload.body,
        limit_value(payload.limit, settings.default_limit, settings.max_limit),
        Filters.build(
            section=payload.section,
            tags=payload.tags,
            exclude=payload.exclude,
            published_after=payload.published_after,
            published_before=payload.published_before,
            language=payload.language,
        ),
        explain=payload.explain,
        fallback=payload.fallback,
        language=payload.language,
    )
    return Response(related_json(rec, result), media_type=JSON)
