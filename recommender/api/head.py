"""HEAD wherever GET is allowed: the GET answer's status and headers, without its body."""

from __future__ import annotations

from typing import Any


class HeadAsGet:
    """Pure ASGI middleware: runs a HEAD request as GET and drops the body it sends.

    The routes are declared for GET only (FastAPI does not add HEAD); a route
    without GET answers HEAD with the same 405 it gives GET.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        inner = {**scope, "method": "GET"}

        async def send_headers_only(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        try:
            await self.app(inner, receive, send_headers_only)
        finally:
            # The metrics middleware outside reads the matched route from its scope.
            if "route" in inner:
                scope["route"] = inner["route"]
