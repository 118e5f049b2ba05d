"""The FastAPI application factory: settings in, app out; no module-level state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import InvalidInputError, LogUnavailableError, RecommenderError, UnknownArticleError
from ..remote import RemoteStore
from .cache import ResponseCache
from .changes import Checkpointer, LogWriter, compact_every, follow_log
from .guard import BodyGuard, BodyRule
from .head import HeadAsGet
from .metrics import Metrics, MetricsMiddleware
from .params import openapi_parameters
from .routes import router
from .routes.related import FRAGMENT_LIMIT
from .settings import Settings
from .state import ModelHolder

log = logging.getLogger("recommender.api")

DESCRIPTION = """Related articles ("You May Also Like") for a site's own corpus.

Lists are precomputed at training time for corpus articles and computed on
demand for free text. Articles can be added, replaced and deleted live (with
the admin token): every write is logged durably and applied by every worker.
Every JSON error body is `{"detail": "..."}`.
"""
BATCH_PATH = "/v1/admin/articles"
# The batch route's media types besides application/json: the names JSON Lines goes by.
JSON_LINES = (b"application/x-ndjson", b"application/ndjson", b"application/jsonl", b"application/x-jsonlines")


async def _reload_quietly(holder: ModelHolder) -> None:
    """Load the current bundle in a thread; a refused bundle is logged by the holder and the old model serves."""
    with contextlib.suppress(RecommenderError):
        await holder.reload()


async def _watch_current(holder: ModelHolder, interval: float) -> None:
    """Follow ``models/current``: load it whenever the link moves (one readlink per tick).

    Every worker runs this, so all of them serve a new bundle within about
    ``interval`` seconds of a new link, whichever worker was asked to reload.
    Serving from shared storage, it follows the store's ``CURRENT`` file
    instead (one small read per tick, in a thread).
    """
    while True:
        await asyncio.sleep(interval)
        try:
            if holder.remote is not None:
                await asyncio.to_thread(holder.refresh)
            if holder.link_changed():
                await _reload_quietly(holder)
        except Exception:  # the watcher must outlive any surprise; the old model keeps serving
            log.exception("model watcher: reload failed")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for ``settings`` (default: from the environment)."""
    settings = settings or Settings()
    log_url = settings.log_url.get_secret_value() if settings.log_url else None
    remote = RemoteStore(settings.models_url) if settings.models_url else None
    # Serving from shared storage, the local cache plays the part of the models directory.
    models_dir = settings.local_models_dir()
    holder = ModelHolder(models_dir, log_url, remote)
    writer = LogWriter(models_dir, log_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Loads the bundle and replays the change log: a new worker serves every write so far.
        with contextlib.suppress(RecommenderError):
            holder.load()
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()

        def on_sighup() -> None:
            task = loop.create_task(_reload_quietly(holder))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        installed = False
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, on_sighup)
            installed = True
        background = []
        if settings.model_watch_interval > 0:
            background.append(loop.create_task(_watch_current(holder, settings.model_watch_interval)))
        if settings.log_poll_interval > 0:
            watching = settings.model_watch_interval > 0
            checkpoints = Checkpointer(models_dir, settings.checkpoint_every)
            follower = follow_log(holder, settings.log_poll_interval, watching=watching, checkpoints=checkpoints)
            background.append(loop.create_task(follower))
        if settings.compact_interval > 0:
            background.append(loop.create_task(compact_every(models_dir, settings.compact_interval, log_url)))
        try:
            yield
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGHUP)
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await writer.close()
            holder.close()

    app = FastAPI(
        title="recommender",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.holder = holder
    app.state.writer = writer
    app.state.metrics = metrics = Metrics(holder)
    app.state.responses = ResponseCache(settings.response_cache_size, settings.response_cache_bytes)
    app.state.cache_control = f"public, max-age={settings.cache_max_age}"
    app.include_router(router)
    _document_list_parameters(app, settings)
    _install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD", "POST"],
            allow_headers=["Content-Type", "If-None-Match"],
            expose_headers=["ETag"],
            max_age=600,
        )
    app.add_middleware(HeadAsGet)
    app.add_middleware(
        BodyGuard,
        max_bytes=settings.max_body_bytes,
        timeout=settings.body_timeout,
        rules={BATCH_PATH: BodyRule(settings.max_batch_bytes, JSON_LINES)},
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def _document_list_parameters(app: FastAPI, settings: Settings) -> None:
    """The hand-parsed GET list routes' query parameters, with this service's limits, in the OpenAPI."""
    described = {
        "related": openapi_parameters(max_limit=settings.max_limit, default_limit=settings.default_limit),
        "related_fragment": openapi_parameters(
            max_limit=settings.max_limit, default_limit=FRAGMENT_LIMIT, dates=False, flags=False
        ),
    }
    for route in app.routes:
        if isinstance(route, APIRoute) and route.name in described:
            route.openapi_extra = {"parameters": described[route.name]}


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: settings from the environment."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    return create_app(Settings())


def _version() -> str:
    from .. import __version__

    return __version__


def _json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as text: JSON has no NaN or Infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _describe_validation(exc: RequestValidationError) -> str:
    messages = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            # loc is ("body", <character position>): not a field name.
            position = error.get("loc", ("body", "?"))[-1]
            reason = (error.get("ctx") or {}).get("error", "invalid JSON")
            messages.append(f"request body is not valid JSON: JSON decode error at character {position}: {reason}")
            continue
        loc = [str(part) for part in error.get("loc", ()) if part not in ("query", "path", "body", "header")]
        name = ".".join(loc) or "body"
        message = f"{name}: {error.get('msg', 'invalid value')}"
        if "input" in error and error.get("type") != "missing" and not isinstance(error["input"], (dict, list)):
            message += f", got {str(error['input'])[:60]!r}"
        messages.append(message)
    return "; ".join(messages)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={
                "detail": _describe_validation(exc),
                "errors": _json_safe(jsonable_encoder(exc.errors(), exclude={"ctx", "url"})),
            },
        )

    @app.exception_handler(UnknownArticleError)
    async def unknown_article(request: Request, exc: UnknownArticleError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc), "id": exc.article_id})

    @app.exception_handler(LogUnavailableError)
    async def log_unavailable(request: Request, exc: LogUnavailableError) -> JSONResponse:
        # The database's address stays in the server's log, not in the answer.
        log.error("%s", exc)
        detail = "the change log's database is unavailable: the write was not acknowledged, try it again"
        return JSONResponse(status_code=503, content={"detail": detail}, headers={"Retry-After": "1"})

    @app.exception_handler(InvalidInputError)
    async def invalid_input(request: Request, exc: InvalidInputError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code, content={"detail": exc.detail}, headers=getattr(exc, "headers", None)
        )
