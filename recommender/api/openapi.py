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

# The write routes' errors besides the token's (see routes.admin.ADMIN_ERRORS).
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "body is not valid UTF-8"},
    408: {"model": Error, "description": "body not received in time"},
    413: {"model": Error, "description": "body too large"},
    415: {"model": Error, "description": "body of another media type"},
    422: {"model": Error, "description": "a record breaks a rule of the corpus format (the message names the field)"},
    503: {"model": Error, "description": "no model loaded"},
}
