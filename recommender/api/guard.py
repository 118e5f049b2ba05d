"""Pure ASGI middleware that refuses oversized and non-JSON request bodies early."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException


async def _reply(send: Any, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


# A refused body is still read (and dropped) up to this many times the limit,
# so that a client still sending gets the answer instead of a broken pipe.
DRAIN_FACTOR = 16


async def _drain(receive: Any, budget: int) -> None:
    """Read and drop the rest of a request body, at most ``budget`` bytes."""
    while budget > 0:
        message = await receive()
        if message["type"] != "http.request":
            return
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class _TooLarge(HTTPException):
    """Raised from ``receive``: an HTTPException, so FastAPI's body parsing re-raises it
    (any other exception there becomes a 400 "error parsing the body")."""


class BodyGuard:
    """413 for bodies over ``max_bytes`` (declared or streamed), 415 for non-JSON bodies.

    Only methods that carry a body are checked; nothing is buffered here.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _reply(send, 400, "Content-Length must be an integer")
                return
            if declared > self.max_bytes:
                if declared <= DRAIN_FACTOR * self.max_bytes:
                    await _drain(receive, declared)
                await _reply(send, 413, f"request body must be at most {self.max_bytes} bytes, got {declared}")
                return
        if declared_body(headers) and not _is_json(headers.get(b"content-type", b"")):
            ctype = headers.get(b"content-type", b"").decode("latin-1") or "none"
            await _drain(receive, DRAIN_FACTOR * self.max_bytes)
            await _reply(send, 415, f"request body must be application/json, got {ctype}")
            return
        received = 0
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if message.get("more_body", False):
                        await _drain(receive, DRAIN_FACTOR * self.max_bytes)
                    raise _TooLarge(413, f"request body must be at most {self.max_bytes} bytes")
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _reply(send, 413, f"request body must be at most {self.max_bytes} bytes")


def declared_body(headers: dict[bytes, bytes]) -> bool:
    """True when the request says it carries a body."""
    length = headers.get(b"content-length")
    return (length is not None and length != b"0") or b"transfer-encoding" in headers


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")
