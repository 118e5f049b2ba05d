"""Administration: load the current bundle from disk."""

# No "from __future__ import annotations": FastAPI reads these annotations at run time.

import asyncio
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.exceptions import HTTPException

from ...errors import BundleError
from ..deps import HolderDep, SettingsDep
from ..schemas import Error
from ..settings import Settings

router = APIRouter(tags=["service"])


def check_admin(authorization: str | None, settings: Settings) -> None:
    """404 without a configured token, 401 without a bearer token, 403 with a wrong one.

    The scheme name is case-insensitive (RFC 7235): ``Bearer``, ``bearer``
    and ``BEARER`` are the same.
    """
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    if token is None:
        raise HTTPException(404, "reload is disabled: no admin token is configured")
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
    responses={
        401: {"model": Error},
        403: {"model": Error},
        404: {"model": Error},
        409: {"model": Error, "description": "the bundle failed verification"},
    },
)
async def reload(
    holder: HolderDep, settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> dict[str, Any]:
    check_admin(authorization, settings)
    previous = holder.current.version if holder.current else None
    try:
        rec = await asyncio.to_thread(holder.load)
    except BundleError as exc:
        raise HTTPException(409, f"bundle refused, still serving {previous}: {exc}") from None
    return {"model_version": rec.version, "previous": previous}
