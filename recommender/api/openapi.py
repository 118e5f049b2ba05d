"""The documented error answers shared by the routes."""

from __future__ import annotations

from typing import Any

from .schemas import Error

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Error, "description": "unknown article"},
    422: {"model": Error, "description": "a parameter breaks its rule"},
    503: {"model": Error, "description": "no model loaded"},
}
# The HTML route's errors are JSON like every other route's; with "model" they
# would be documented under the route's own media type (text/html).
JSON_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {
        "description": spec["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for code, spec in ERRORS.items()
}
