"""The browser's side: the embeddable widget, the demo page and its images."""

# No "from __future__ import annotations": FastAPI reads these annotations at run time.

import functools
from importlib import resources

from fastapi import APIRouter
from fastapi.exceptions import HTTPException
from fastapi.responses import HTMLResponse, Response

from ..deps import HolderDep, SettingsDep
from ..pages import demo_page

router = APIRouter(include_in_schema=False)


@functools.cache
def _widget_js() -> bytes:
    return resources.files("recommender").joinpath("static/widget.js").read_bytes()


def _cache_control(settings: SettingsDep) -> dict[str, str]:
    return {"Cache-Control": f"public, max-age={settings.cache_max_age}"}


@router.get("/widget.js")
async def widget(settings: SettingsDep) -> Response:
    return Response(_widget_js(), media_type="application/javascript; charset=utf-8", headers=_cache_control(settings))


@router.get("/", response_class=HTMLResponse)
async def demo(holder: HolderDep, article: str | None = None) -> HTMLResponse:
    return HTMLResponse(demo_page(holder.current, article))


@router.get("/static/demo/{name}")
async def demo_image(name: str, settings: SettingsDep) -> Response:
    images = resources.files("recommender").joinpath("static/demo")
    if "/" in name or not name.endswith(".svg") or not images.joinpath(name).is_file():
        raise HTTPException(404, f"no demo image {name!r}")
    return Response(images.joinpath(name).read_bytes(), media_type="image/svg+xml", headers=_cache_control(settings))
