"""The service's own state: liveness, readiness, the active model, metrics."""

# No "from __future__ import annotations": FastAPI reads these annotations at run time.

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from ..deps import MetricsDep, ModelDep
from ..openapi import ERRORS
from ..schemas import Health, ModelSummary

router = APIRouter(tags=["service"])

_SUMMARY_KEYS = ("created_at", "format_version", "vocabulary", "k", "parameters", "libraries")


@router.get(
    "/v1/model",
    response_model=ModelSummary,
    responses={503: ERRORS[503]},
    summary="The active model: its bundle and the writes applied since",
    description="`drift` counts the articles written since the bundle was built: when it grows large, "
    "`recommender compact` folds them into a new bundle.",
)
async def model_summary(rec: ModelDep) -> dict[str, Any]:
    return {
        **{key: rec.manifest[key] for key in _SUMMARY_KEYS},
        "version": rec.version,
        "base_version": rec.base_version,
        "log_seq": rec.log_seq,
        "articles": len(rec),
        "languages": rec.manifest["language_counts"],
        "drift": rec.drift(),
    }


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get("/readyz", response_model=Health, responses={503: ERRORS[503]}, summary="A model is loaded")
async def readyz(rec: ModelDep) -> dict[str, Any]:
    return {"status": "ready", "model_version": rec.version}


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
async def metrics(metrics: MetricsDep) -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
