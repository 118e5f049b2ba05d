"""The FastAPI application factory: settings in, app out; no module-level state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import InvalidInputError, RecommenderError, UnknownArticleError
from .guard import BodyGuard
from .metrics import Metrics, MetricsMiddleware
from .routes import build_router
from .settings import Settings
from .state import ModelHolder

log = logging.getLogger("recommender.api")

DESCRIPTION = """Related articles ("You May Also Like") for a site's own corpus.

Lists are precomputed at training time for corpus articles and computed on
demand for free text. Every JSON error body is `{"detail": "..."}`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for ``settings`` (default: from the environment)."""
    settings = settings or Settings()
    holder = ModelHolder(settings.models_dir)
    metrics = Metrics()

    def reload_model() -> Any:
        rec = holder.load()
        metrics.model_loaded(rec.version, len(rec))
        return rec

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with contextlib.suppress(RecommenderError):
            reload_model()
        loop = asyncio.get_running_loop()
        pending: set[asyncio.Task[None]] = set()

        def on_sighup() -> None:
            async def reload_in_thread() -> None:
                with contextlib.suppress(RecommenderError):
                    await asyncio.to_thread(reload_model)

            task = loop.create_task(reload_in_thread())
            pending.add(task)
            task.add_done_callback(pending.discard)

        installed = False
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, on_sighup)
            installed = True
        try:
            yield
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGHUP)

    app = FastAPI(
        title="recommender",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.holder = holder
    app.state.metrics = metrics
    app.state.reload_model = reload_model
    app.include_router(build_router(settings, holder, metrics, reload_model))
    _install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "If-None-Match"],
            expose_headers=["ETag"],
            max_age=600,
        )
    app.add_middleware(BodyGuard, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: settings from the environment."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    return create_app(Settings())


def _version() -> str:
    from .. import __version__

    return __version__


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
                "errors": jsonable_encoder(exc.errors(), exclude={"ctx", "url"}),
            },
        )

    @app.exception_handler(UnknownArticleError)
    async def unknown_article(request: Request, exc: UnknownArticleError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc), "id": exc.article_id})

    @app.exception_handler(InvalidInputError)
    async def invalid_input(request: Request, exc: InvalidInputError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code, content={"detail": exc.detail}, headers=getattr(exc, "headers", None)
        )
