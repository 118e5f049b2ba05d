"""Real ``recommender serve`` processes on 127.0.0.1 for end-to-end tests.

A server is started in its own process group on a free port, waited for
until ``/readyz`` answers 200 (bounded), and stopped by its PID: SIGTERM to
its process group, then SIGKILL if it does not exit in time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Reply:
    """One HTTP exchange's outcome."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Reply:
    """One request with urllib; HTTP errors are returned, not raised."""
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return Reply(resp.status, dict(resp.headers.items()), resp.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, dict(exc.headers.items()), exc.read())


@dataclass
class Server:
    """A running ``recommender serve`` subprocess."""

    process: subprocess.Popen[bytes]
    port: int
    models_dir: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> Reply:
        return http(method, self.url(path), body, headers)

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Reply:
        return http("GET", self.url(path), None, headers)

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def wait_ready(self, timeout: float = START_TIMEOUT, want_status: int = 200) -> None:
        """Poll /readyz until it answers ``want_status``; fail with the server log otherwise."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                reply = http("GET", self.url("/readyz"), timeout=2)
                if reply.status == want_status:
                    return
                last = f"/readyz answered {reply.status}"
            except (OSError, urllib.error.URLError) as exc:
                last = repr(exc)
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server not ready within {timeout}s ({last}):\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL it if it lingers."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT)
        else:
            # The leader is gone; make sure no worker of its group survives it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)


def start_server(
    models_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    workers: int = 1,
    wait_for: int | None = 200,
    log_dir: Path | None = None,
    source: Sequence[str] | None = None,
) -> Server:
    """Start ``python -m recommender serve`` on a free port and wait for /readyz.

    ``wait_for`` is the /readyz status to wait for (503 for a server without a
    model; None to not wait at all). ``source`` replaces ``--models-dir
    models_dir`` (e.g. ``--models-url URL --cache-dir CACHE``).
    """
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMMENDER_")}
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    full_env.update(env or {})
    full_env["PYTHONUNBUFFERED"] = "1"
    log_folder = log_dir or Path(tempfile.mkdtemp(prefix="recommender-serve-"))
    log_path = log_folder / f"serve-{port}.log"
    log_file = log_path.open("wb")
    command = [
        sys.executable,
        "-m",
        "recommender",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *(source if source is not None else ("--models-dir", str(models_dir))),
    ]
    if workers > 1:
        command += ["--workers", str(workers)]
    try:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so teardown can stop workers too
        )
    finally:
        log_file.close()
    server = Server(process, port, Path(models_dir), log_path, dict(env or {}))
    if wait_for is not None:
        server.wait_ready(want_status=wait_for)
    return server


@contextlib.contextmanager
def running_server(models_dir: Path, **kwargs: Any) -> Iterator[Server]:
    """``start_server`` as a context manager that always stops the process."""
    server = start_server(models_dir, **kwargs)
    try:
        yield server
    finally:
        server.stop()


# Hostile articles: every public field carries a script payload. Their bodies are
# three different reports of the same (invented) football match, so they are
# related to each other without being near-duplicates (cosine < 0.9).
EVIL_TITLE = "<img src=x onerror=alert(1)>"
EVIL_URL = "javascript:alert(1)"
_EVIL = [
    (
        "Rovers edge Athletic in derby thriller",
        "<script>window.__xss = 'excerpt-0'; alert(2)</script> Derby report",
        "Rovers beat Athletic 3-2 in a thrilling derby at Kingsmead Park on Saturday. Striker Tom Hale "
        "scored twice before half-time, Athletic levelled through a penalty and a header, and defender "
        "Sam Okoro won it for Rovers with a late volley in front of a sold-out crowd.",
    ),
    (
        "Late volley settles the derby",
        "<svg onload=\"window.__xss='excerpt-1'\"></svg> Okoro strikes late",
        "A stoppage-time volley from Sam Okoro gave Rovers a 3-2 win over their neighbours Athletic. "
        "Hale had put the home side two goals up, but Athletic fought back after the break and their "
        "travelling supporters were celebrating a draw at Kingsmead Park until the final minute.",
    ),
    (
        "Athletic manager angry after derby defeat",
        "<img src=x onerror=\"window.__xss='excerpt-2'\"> Manager fumes",
        "The Athletic manager criticised the referee after his side lost the derby 3-2 to Rovers at "
        "Kingsmead Park. He accepted the penalty decision but said Okoro should have been sent off "
        "long before the defender volleyed the winning goal past his goalkeeper.",
    ),
]


def evil_articles() -> list[dict[str, str]]:
    """Three related articles (ids evil-0..evil-2) whose public fields carry script payloads."""
    return [
        {
            "id": f"evil-{n}",
            "title": f"{EVIL_TITLE} {headline}",
            "excerpt": excerpt,
            "url": EVIL_URL,
            "image": EVIL_URL,
            "body": body,
            "section": "sport",
            "published_at": "2026-03-01",
        }
        for n, (headline, excerpt, body) in enumerate(_EVIL)
    ]


# --- which worker answered -----------------------------------------------------------------
#
# A server with --workers N gives no sign of which worker answered a request.
# Linux does: the worker that accepted a connection holds the server side of it
# as an open socket. The kernel (sock_diag) names that socket's inode for a
# (server port, client port) pair, and /proc/<pid>/fd of that worker links to
# it. So a probe on a fresh connection can name its worker exactly, while the
# connection is still open.


def worker_pids(server: Server) -> list[int]:
    """The pids of the server's worker processes (the children of its supervisor)."""
    try:
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    except OSError:
        return []
    return sorted(int(pid) for pid in children)


def wait_for_workers(server: Server, count: int, timeout: float = 60.0) -> None:
    """Wait (bounded) until ``count`` workers have finished starting: /readyz only proves one did."""
    deadline = time.monotonic() + timeout
    while server.log().count("Application startup complete.") < count:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)


_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NETLINK_SOCK_DIAG = 4  # linux/netlink.h (not exported by the socket module)


def _server_side_inode(server_port: int, client_port: int) -> int | None:
    """The inode of the server's side of a loopback connection, asked of the kernel by its exact address.

    Netlink's sock_diag answers one socket in microseconds, where reading
    /proc/net/tcp lists every socket of the machine (milliseconds once
    thousands of connections wait in TIME_WAIT).
    """
    loopback = socket.inet_aton("127.0.0.1") + bytes(12)
    # struct inet_diag_req_v2 (family, protocol, ext, pad, states) + struct inet_diag_sockid (sport, dport
    # big-endian, src, dst, interface, cookie: "none" is all ones).
    request = struct.pack("=BBBxI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0xFFFFFFFF)
    request += struct.pack("!HH", server_port, client_port) + loopback + loopback
    request += struct.pack("=III", 0, 0xFFFFFFFF, 0xFFFFFFFF)
    header = struct.pack("=IHHII", 16 + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(5)
        nl.send(header + request)
        answer = nl.recv(65536)
    _, kind, _, _, _ = struct.unpack_from("=IHHII", answer)
    if kind != _SOCK_DIAG_BY_FAMILY:  # NLMSG_ERROR: no such socket (the connection is gone)
        return None
    # struct inet_diag_msg: family, state, timer, retrans, the 48-byte sockid, expires, rqueue, wqueue, uid, inode.
    (inode,) = struct.unpack_from("=I", answer, 16 + 4 + 48 + 16)
    return int(inode)


def _holder_of(inode: int, pids: list[int]) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        folder = f"/proc/{pid}/fd"
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            try:
                if os.readlink(f"{folder}/{name}") == target:
                    return pid
            except OSError:
                continue
    return None


def probe(
    server: Server, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
) -> tuple[Reply, int | None]:
    """One request on a fresh connection, and the pid of the worker that answered it (None if unknown).

    The connection is closed by the client after the answer was read and its
    worker looked up, so every probe may reach any worker.
    """
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        reply = Reply(response.status, dict(response.getheaders()), response.read())
        sock = connection.sock
        pid = None
        if sock is not None:
            inode = _server_side_inode(server.port, sock.getsockname()[1])
            pid = _holder_of(inode, worker_pids(server)) if inode is not None else None
        return reply, pid
    finally:
        connection.close()
