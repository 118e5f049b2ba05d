"""uvicorn's httptools protocol with limits on the request head: its size and the time it takes.

httptools (llhttp) buffers a header of any size and uvicorn waits for a head
forever; this subclass counts the bytes of each request head as they arrive
(431 past ``max_header_bytes``) and gives the head ``header_timeout`` seconds
from the connection's or the request's first byte (408, or a plain close for
a connection that sent nothing). Bodies are timed by :class:`~.guard.BodyGuard`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
_HEAD_END = b"\r\n\r\n"


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that refuses oversized and slow request heads."""

    def __init__(self, *args: Any, max_header_bytes: int, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes = max_header_bytes
        self.header_timeout = header_timeout
        self._in_head = True
        self._head_bytes = 0
        self._tail = b""
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            if self._head_timer is None:
                self._arm_head_timer()
            window = self._tail + data
            end = window.find(_HEAD_END)
            # Only the bytes up to the end of the head count (a body may follow in the same read).
            self._head_bytes += len(data) if end < 0 else max(0, end + len(_HEAD_END) - len(self._tail))
            if self._head_bytes > self.max_header_bytes:
                self._refuse(431, f"request headers must be at most {self.max_header_bytes} bytes")
                return
            self._tail = window[-(len(_HEAD_END) - 1) :]
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The next request's head: its timer starts with its first byte (idle time is keep-alive's).
        self._in_head = True
        self._head_bytes = 0
        self._tail = b""

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm_head_timer()  # a pipelined head waits behind an answer in progress
            return
        if self._head_bytes == 0:
            self.transport.close()
            return
        self._refuse(408, f"request headers were not received within {self.header_timeout:g} s")

    def _refuse(self, status: int, detail: str) -> None:
        self._in_head = False
        self._cancel_head_timer()
        body = json.dumps({"detail": detail}).encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % (status, _REASONS[status], len(body))
            + body
        )
        self.transport.close()
