"""Pure ASGI middleware that refuses oversized, slow and non-JSON request bodies early."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException

_CLOSE = (b"connection", b"close")


async def _reply(send: Any, status: int, detail: str) -> None:
    """A JSON error that also closes the connection: the rest of the body is not read."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                _CLOSE,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# A refused body is still read (and dropped) up to this many times the limit,
# so that a client still sending gets the answer instead of a broken pipe.
DRAIN_FACTOR = 16


class _TooLarge(HTTPException):
    """Raised from ``receive``: an HTTPException, so FastAPI's body parsing re-raises it
    (any other exception there becomes a 400 "error parsing the body")."""


class _TooSlow(HTTPException):
    """Raised from ``receive`` when the body is not complete by the deadline."""


@dataclass(frozen=True)
class BodyRule:
    """The largest body a path takes and its media types (JSON, and ``also`` besides)."""

    max_bytes: int
    also: tuple[bytes, ...] = ()

    def accepts(self, content_type: bytes) -> bool:
        media = content_type.split(b";", 1)[0].strip().lower()
        return _is_json(content_type) or media in self.also

    def expected(self) -> str:
        return " or ".join([*(m.decode() for m in self.also), "application/json"])


class BodyGuard:
    """413 for bodies over ``max_bytes`` (declared or streamed), 415 for non-JSON bodies,
    408 for a body not received within ``timeout`` seconds of the request's start.

    ``rules`` gives some paths a limit and media types of their own (the
    batch write route takes JSON Lines up to a larger size). Only methods
    that carry a body are checked for size and type; nothing is buffered
    here. Any request whose body is not read to its end by the time the
    answer starts gets ``Connection: close``, so that a client stalling in
    its body does not hold the connection.
    """

    def __init__(
        self, app: Any, max_bytes: int, timeout: float = 15.0, rules: Mapping[str, BodyRule] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.rules = dict(rules or {})
        self.default = BodyRule(max_bytes)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if not declared_body(headers):
            await self.app(scope, receive, send)
            return
        rule = self.rules.get(scope["path"], self.default)
        max_bytes = rule.max_bytes
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        complete = False
        slow = f"request body was not received within {self.timeout:g} s"

        async def timed_receive() -> dict[str, Any]:
            nonlocal complete
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    message: dict[str, Any] = await receive()
            except TimeoutError:
                raise _TooSlow(408, slow, headers={"Connection": "close"}) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        async def drain(budget: int) -> None:
            """Read and drop the rest of the body: at most ``budget`` bytes, until the deadline."""
            while budget > 0 and not complete:
                try:
                    message = await timed_receive()
                except _TooSlow:
                    return
                budget -= len(message.get("body", b""))

        if scope["method"] in ("POST", "PUT", "PATCH"):
            length = headers.get(b"content-length")
            if length is not None:
                try:
                    declared = int(length)
                except ValueError:
                    await _reply(send, 400, "Content-Length must be an integer")
                    return
                if declared > max_bytes:
                    if declared <= DRAIN_FACTOR * max_bytes:
                        await drain(declared)
                    await _reply(send, 413, f"request body must be at most {max_bytes} bytes, got {declared}")
                    return
            if not rule.accepts(headers.get(b"content-type", b"")):
                ctype = headers.get(b"content-type", b"").decode("latin-1") or "none"
                await drain(DRAIN_FACTOR * max_bytes)
                await _reply(send, 415, f"request body must be {rule.expected()}, got {ctype}")
                return
        received = 0
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await timed_receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    await drain(DRAIN_FACTOR * max_bytes)
                    raise _TooLarge(413, f"request body must be at most {max_bytes} bytes")
            return message

        async def closing_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if not complete:
                    message = {**message, "headers": [*message.get("headers", ()), _CLOSE]}
            await send(message)

        try:
            await self.app(scope, limited_receive, closing_send)
        except (_TooLarge, _TooSlow) as exc:
            if not started:
                await _reply(send, exc.status_code, exc.detail)


def declared_body(headers: dict[bytes, bytes]) -> bool:
    """True when the request says it carries a body."""
    length = headers.get(b"content-length")
    return (length is not None and length != b"0") or b"transfer-encoding" in headers


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")
