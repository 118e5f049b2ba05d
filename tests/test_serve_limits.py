"""Header size, header and body timeouts and HEAD, against a real ``recommender serve`` process.

The limits are enforced by the server's HTTP protocol (headers) and by the
body guard (bodies); each test speaks raw HTTP on a socket. Waits are bounded
by the socket timeout, never asserted as durations.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from recommender.train import TrainOptions, train

from .conftest import DEMO_CORPUS
from .servers import Server, running_server

pytestmark = pytest.mark.slow

HEADER_LIMIT = 4096
SOCKET_TIMEOUT = 20.0  # far above the server's 1 s timeouts: a hang fails the test, it does not block it


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    models = tmp_path_factory.mktemp("limits") / "models"
    train([DEMO_CORPUS], models, TrainOptions(n_jobs=1))
    env = {
        "RECOMMENDER_MAX_HEADER_BYTES": str(HEADER_LIMIT),
        "RECOMMENDER_HEADER_TIMEOUT": "1",
        "RECOMMENDER_BODY_TIMEOUT": "1",
    }
    with running_server(models, env=env) as s:
        yield s


def exchange(port: int, data: bytes) -> tuple[bytes, bool]:
    """Send ``data``, then read until the server closes; return what came back and whether it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            return received, False
        except ConnectionResetError:
            return received, True
    return received, True


def status_and_body(received: bytes) -> tuple[int, bytes]:
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b"\r\n", 1)[0].split()[1]), body


def test_oversized_header_is_431_and_closed(server: Server) -> None:
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (2 * HEADER_LIMIT) + b"\r\n\r\n"
    received, closed = exchange(server.port, big)
    assert closed
    status, body = status_and_body(received)
    assert status == 431
    assert json.loads(body) == {"detail": f"request headers must be at most {HEADER_LIMIT} bytes"}


def test_oversized_header_sent_slowly_is_refused_before_it_ends(server: Server) -> None:
    # 10 MB announced a piece at a time: refused as soon as the limit is passed.
    with socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        received = b""
        try:
            for _ in range(10 * 1024):
                sock.sendall(b"a" * 1024)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    assert status_and_body(received)[0] == 431


def test_header_within_the_limit_is_served(server: Server) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Ok: " + b"a" * 3000 + b"\r\n\r\n"
    received, closed = exchange(server.port, request)
    assert closed and status_and_body(received) == (200, b'{"status":"ok"}')


def test_stalled_header_is_408_and_closed(server: Server) -> None:
    received, closed = exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    assert closed
    status, body = status_and_body(received)
    assert status == 408
    assert json.loads(body) == {"detail": "request headers were not received within 1 s"}


def test_silent_connection_is_closed(server: Server) -> None:
    received, closed = exchange(server.port, b"")
    assert closed and received == b""


def test_stalled_body_is_408_and_closed(server: Server) -> None:
    head = b"POST /v1/related HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    received, closed = exchange(server.port, head + b'{"title": "ferry')
    assert closed
    status, body = status_and_body(received)
    assert status == 408
    assert json.loads(body) == {"detail": "request body was not received within 1 s"}


def test_stalled_oversized_body_is_413_and_closed(server: Server) -> None:
    declared = 10 * 1024 * 1024
    head = (
        b"POST /v1/related HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(declared).encode() + b"\r\n\r\n"
    )
    received, closed = exchange(server.port, head + b'{"title": "' + b"x" * 1000)
    assert closed
    status, body = status_and_body(received)
    assert status == 413
    assert json.loads(body) == {"detail": f"request body must be at most 1048576 bytes, got {declared}"}


def test_stalled_body_of_a_route_that_reads_none_is_closed(server: Server) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    received, closed = exchange(server.port, head + b"abc")
    assert closed
    assert status_and_body(received)[0] == 200


def test_head_on_a_real_server(server: Server) -> None:
    path = b"/v1/articles/biz-saltmere-lines-fare-rise/related?limit=3"
    got, _ = exchange(server.port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, closed = exchange(server.port, b"HEAD " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert closed
    get_head, _, get_body = got.partition(b"\r\n\r\n")
    head_head, _, head_body = head.partition(b"\r\n\r\n")
    assert head_body == b"" and get_body

    def fields(text: bytes) -> dict[bytes, bytes]:
        lines = text.split(b"\r\n")
        pairs = (line.split(b":", 1) for line in lines[1:])
        return {k.strip().lower(): v.strip() for k, v in pairs if k.strip().lower() != b"date"} | {b"": lines[0]}

    assert fields(head_head) == fields(get_head)
    assert fields(head_head)[b"content-length"] == str(len(get_body)).encode()
