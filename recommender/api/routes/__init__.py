"""The service's routes, one module per resource; each parses input, calls the library once, shapes the answer."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import NO_MODEL
from . import admin, articles, pages, related, service

__all__ = ["NO_MODEL", "router"]

router = APIRouter()
# related before articles: "/v1/articles/{article_id:path}" would also match ".../related".
for _module in (related, articles, service, admin, pages):
    router.include_router(_module.router)
