"""Dependencies of the routes: the settings, the model holder and the model, read from ``app.state``."""

# No "from __future__ import annotations": FastAPI reads these annotations at run time.

from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import HTTPException

from ..recommend import Recommender
from .changes import LogWriter
from .metrics import Metrics
from .settings import Settings
from .state import ModelHolder

NO_MODEL = "no model loaded: train one with 'recommender train' and reload the service"


# The dependencies are coroutines: FastAPI would run plain functions in its thread pool.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_holder(request: Request) -> ModelHolder:
    return request.app.state.holder  # type: ignore[no-any-return]


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


async def get_writer(request: Request) -> LogWriter:
    return request.app.state.writer  # type: ignore[no-any-return]


def current_model(request: Request) -> Recommender:
    """The model serving this request, or 503 when none is loaded."""
    rec: Recommender | None = request.app.state.holder.current
    if rec is None:
        raise HTTPException(503, NO_MODEL)
    return rec


async def get_model(request: Request) -> Recommender:
    return current_model(request)


SettingsDep = Annotated[Settings, Depends(get_settings)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ModelDep = Annotated[Recommender, Depends(get_model)]
WriterDep = Annotated[LogWriter, Depends(get_writer)]
