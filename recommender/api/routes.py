"""Routes: each parses input, calls the library once, and shapes the response."""

# No "from __future__ import annotations": FastAPI reads these annotations at run time.

import asyncio
import hmac
import zlib
from collections.abc import Callable
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from ..errors import BundleError
from ..recommend import Filters, Recommender
from .cache import ResponseCache
from .metrics import Metrics
from .pages import demo_page
from .params import openapi_parameters, parse_list_query
from .render import related_html, related_json
from .schemas import Article, Error, Health, ModelSummary, RelatedRequest, RelatedResponse
from .settings import Settings
from .state import ModelHolder

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Error, "description": "unknown article"},
    422: {"model": Error, "description": "a parameter breaks its rule"},
    503: {"model": Error, "description": "no model loaded"},
}
# The HTML route's errors are JSON like every other route's; with "model" they
# would be documented under the route's own media type (text/html).
_JSON_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {
        "description": spec["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for code, spec in _ERRORS.items()
}
NO_MODEL = "no model loaded: train one with 'recommender train' and reload the service"


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def build_router(
    settings: Settings, holder: ModelHolder, metrics: Metrics, reload_model: Callable[[], Recommender]
) -> APIRouter:
    """All routes of the service, bound to one settings object and model holder."""
    router = APIRouter()
    cache_control = f"public, max-age={settings.cache_max_age}"
    responses = ResponseCache(settings.response_cache_size)
    widget_js = resources.files("recommender").joinpath("static/widget.js").read_bytes()

    def model() -> Recommender:
        rec = holder.current
        if rec is None:
            raise HTTPException(503, NO_MODEL)
        return rec

    def cached(
        request: Request, rec: Recommender, media_type: str = "application/json"
    ) -> tuple[str, Any, Response | None]:
        """The request's ETag and cache key, and a ready answer (304 or a cached body) if there is one."""
        scope = request.scope
        path, query = scope["path"], scope["query_string"]
        etag = f'"{rec.version}-{zlib.crc32(path.encode() + b"?" + query):08x}"'
        match = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                match = value.decode("latin-1")
        if match and _etag_matches(match, etag):
            return etag, None, Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control})
        key = (rec.version, path, query)
        body = responses.get(key)
        if body is not None:
            return etag, key, Response(body, media_type=media_type, headers=headers(etag))
        return etag, key, None

    def headers(etag: str) -> dict[str, str]:
        return {"ETag": etag, "Cache-Control": cache_control}

    def filters(
        section: str | None,
        tag: list[str],
        exclude: list[str],
        published_after: str | None,
        published_before: str | None,
    ) -> Filters:
        return Filters.build(
            section=section,
            tags=tag,
            exclude=exclude,
            published_after=published_after,
            published_before=published_before,
        )

    list_params = openapi_parameters(max_limit=settings.max_limit, default_limit=settings.default_limit)
    fragment_params = openapi_parameters(max_limit=settings.max_limit, default_limit=3, dates=False, flags=False)

    @router.get(
        "/v1/articles/{article_id:path}/related.html",
        response_class=HTMLResponse,
        responses=_JSON_ERRORS,
        tags=["widget"],
        summary="The related box as an HTML fragment",
        openapi_extra={"parameters": fragment_params},
    )
    async def related_fragment(request: Request) -> Response:
        rec = model()
        etag, key, ready = cached(request, rec, "text/html; charset=utf-8")
        if ready:
            return ready
        query = parse_list_query(
            request.scope["query_string"], default_limit=3, max_limit=settings.max_limit, dates=False
        )
        result = rec.related(request.path_params["article_id"], query.limit, query.filters)
        body = related_html(rec.describe(result.items)).encode()
        responses.put(key, body)
        return Response(body, media_type="text/html; charset=utf-8", headers=headers(etag))

    @router.get(
        "/v1/articles/{article_id:path}/related",
        response_model=RelatedResponse,
        responses=_ERRORS,
        tags=["related"],
        summary="Related articles of a corpus article",
        openapi_extra={"parameters": list_params},
    )
    async def related(request: Request) -> Response:
        # Parameters are read by parse_list_query (documented through
        # openapi_extra): FastAPI's per-parameter validation would cost more
        # than the lookup itself on this, the hottest route.
        rec = model()
        etag, key, ready = cached(request, rec)
        if ready:
            return ready
        query = parse_list_query(
            request.scope["query_string"], default_limit=settings.default_limit, max_limit=settings.max_limit
        )
        result = rec.related(
            request.path_params["article_id"],
            query.limit,
            query.filters,
            explain=query.explain,
            fallback=query.fallback,
        )
        body = related_json(rec, result)
        responses.put(key, body)
        return Response(body, media_type="application/json", headers=headers(etag))

    @router.post(
        "/v1/related",
        response_model=RelatedResponse,
        tags=["related"],
        responses={
            **_ERRORS,
            413: {"model": Error, "description": "body too large"},
            415: {"model": Error, "description": "body is not JSON"},
            400: {"model": Error, "description": "body is not valid UTF-8"},
        },
        summary="Related articles of a draft or any text",
    )
    async def related_text(payload: RelatedRequest) -> Response:
        rec = model()
        limit = payload.limit or settings.default_limit
        if limit > settings.max_limit:
            raise HTTPException(422, f"limit must be an integer in [1, {settings.max_limit}], got {limit}")
        result = rec.related_to_text(
            payload.title,
            payload.body,
            limit,
            filters(payload.section, payload.tags, payload.exclude, payload.published_after, payload.published_before),
            explain=payload.explain,
            fallback=payload.fallback,
        )
        return Response(related_json(rec, result), media_type="application/json")

    @router.get(
        "/v1/articles/{article_id:path}",
        response_model=Article,
        responses=_ERRORS,
        tags=["articles"],
        summary="The stored metadata of one article",
    )
    async def article(request: Request, article_id: str) -> Response:
        rec = model()
        etag, _, ready = cached(request, rec)
        if ready:
            return ready
        body = rec.metadata_bytes(rec.index_for(article_id))
        return Response(body, media_type="application/json", headers=headers(etag))

    @router.get(
        "/v1/model",
        response_model=ModelSummary,
        responses={503: _ERRORS[503]},
        tags=["service"],
        summary="The active model bundle",
    )
    async def model_summary() -> dict[str, Any]:
        m = model().manifest
        keys = ("version", "created_at", "format_version", "articles", "vocabulary", "k", "parameters", "libraries")
        return {k: m[k] for k in keys}

    @router.get("/healthz", response_model=Health, tags=["service"], summary="The process is up")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @router.get(
        "/readyz", response_model=Health, responses={503: _ERRORS[503]}, tags=["service"], summary="A model is loaded"
    )
    async def readyz() -> dict[str, Any]:
        return {"status": "ready", "model_version": model().version}

    @router.get("/metrics", response_class=PlainTextResponse, tags=["service"], summary="Prometheus metrics")
    async def metrics_route() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @router.post(
        "/v1/admin/reload",
        tags=["service"],
        summary="Load the current bundle from disk",
        responses={
            401: {"model": Error},
            403: {"model": Error},
            404: {"model": Error},
            409: {"model": Error, "description": "the bundle failed verification"},
        },
    )
    async def reload(authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        token = settings.admin_token.get_secret_value() if settings.admin_token else None
        if token is None:
            raise HTTPException(404, "reload is disabled: no admin token is configured")
        if not authorization or not authorization.startswith("Bearer "):
            raise HTTPException(
                401,
                "admin token required: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(authorization.removeprefix("Bearer ").encode(), token.encode()):
            raise HTTPException(403, "wrong admin token")
        previous = holder.current.version if holder.current else None
        try:
            rec = await asyncio.to_thread(reload_model)
        except BundleError as exc:
            raise HTTPException(409, f"bundle refused, still serving {previous}: {exc}") from None
        return {"model_version": rec.version, "previous": previous}

    @router.get("/widget.js", include_in_schema=False)
    async def widget() -> Response:
        return Response(
            widget_js, media_type="application/javascript; charset=utf-8", headers={"Cache-Control": cache_control}
        )

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def demo(article: str | None = None) -> HTMLResponse:
        return HTMLResponse(demo_page(holder.current, article))

    @router.get("/static/demo/{name}", include_in_schema=False)
    async def demo_image(name: str) -> Response:
        images = resources.files("recommender").joinpath("static/demo")
        if "/" in name or not name.endswith(".svg") or not images.joinpath(name).is_file():
            raise HTTPException(404, f"no demo image {name!r}")
        return Response(
            images.joinpath(name).read_bytes(), media_type="image/svg+xml", headers={"Cache-Control": cache_control}
        )

    return router
