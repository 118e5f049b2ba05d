"""Suite 3: the HTTP service under a real load generator (wrk), each endpoint against /healthz.

``recommender serve`` runs as a subprocess on 127.0.0.1 (a free port, its own
process group, stopped by its PID) with 1 and 2 workers on a trained model.
``wrk`` drives it from the same machine, so the load generator and the server
share the CPU cores: read the ratios to ``/healthz`` (the framework floor,
measured in the same run against the same server) rather than absolute rates.

Endpoints (every one sent through the same kind of Lua ``request`` function,
so the load generator does the same work per request):

* ``GET /healthz``: the floor;
* ``GET /v1/articles/{id}/related?limit=10``: ids rotated over 200 articles;
* ``GET /v1/articles/{id}/related.html``: the widget fragment (3 items), same ids;
* ``POST /v1/related``: one ~400-word draft (title + body, limit 10).

Each endpoint runs with 32 connections (2 wrk threads; throughput) and with 1
connection (1 thread; latency without queueing), for a bounded time. Latency
percentiles come from wrk's own histogram (a Lua ``done`` hook prints them as
JSON). The server's CPU time per request is read from /proc.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bench_training import process_tree
from .synthetic import ROOT

DURATIONS = {"full": (6, 1), "quick": (2, 1)}  # (measured, warm-up) whole seconds per run: wrk takes no fractions
WORKERS = {"full": (1, 2), "quick": (2,)}
CONNECTIONS = (32, 1)
ENDPOINTS = ("healthz", "related", "widget", "post")
ROTATED_IDS = 200


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# A server process -----------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, urllib.error.URLError):
        return None


@dataclass
class Server:
    """A running ``recommender serve`` in its own process group."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    started: float
    ready_seconds: float | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Seconds from process start until /readyz answered 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.log_tail()}")
            if get_status(self.url("/readyz"), timeout=1.0) == 200:
                self.ready_seconds = time.perf_counter() - self.started
                return self.ready_seconds
            time.sleep(0.005)
        self.stop()
        raise RuntimeError(f"server not ready within {timeout} s: {self.log_tail()}")

    def workers(self) -> list[int]:
        """PIDs of the worker processes (the leader itself with one worker)."""
        found = []
        for pid in process_tree(self.pid)[1:]:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                found.append(pid)
        return sorted(found) or [self.pid]

    def cpu_seconds(self) -> float:
        """User + system CPU time of the leader and all its workers so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in process_tree(self.pid):
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{pid}/stat").read_bytes()
                fields = stat[stat.rfind(b")") + 2 :].split()
                total += int(fields[11]) + int(fields[12])
        return total / ticks

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM the process group by the leader's PID, SIGKILL if it lingers."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)


def start_server(models_dir: Path, workers: int, log_dir: Path, extra_env: dict[str, str] | None = None) -> Server:
    """Start ``recommender serve`` on a free port of 127.0.0.1 (does not wait)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMMENDER_")}
    env.update(extra_env or {})
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-m", "recommender", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers), "--models-dir", str(models_dir)]
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"serve-{port}.log"
    with log_path.open("wb") as handle:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(process, port, log_path, started)


@contextlib.contextmanager
def serving(models_dir: Path, workers: int, log_dir: Path, extra_env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    server = start_server(models_dir, workers, log_dir, extra_env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


# wrk ----------------------------------------------------------------------

_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "bytes": %d, "errors_connect": %d, "errors_read": %d, ' ..
    '"errors_write": %d, "errors_status": %d, "errors_timeout": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


def _lua_string(text: str) -> str:
    level = "=" * 4
    while f"]{level}]" in text:
        level += "="
    return f"[{level}[{text}]{level}]"


def lua_script(endpoint: str, ids: list[str], draft: tuple[str, str]) -> str:
    """The wrk script of one endpoint: a request function and the JSON ``done`` hook."""
    if endpoint == "healthz":
        body = 'request = function() return wrk.format("GET", "/healthz") end\n'
    elif endpoint in ("related", "widget"):
        suffix = "/related?limit=10" if endpoint == "related" else "/related.html"
        quoted = ", ".join(_lua_string("/v1/articles/" + urllib.parse.quote(i, safe="") + suffix) for i in ids)
        body = (
            f"local paths = {{{quoted}}}\n"
            "local i = 0\n"
            "request = function()\n"
            "  i = i + 1\n"
            "  if i > #paths then i = 1 end\n"
            '  return wrk.format("GET", paths[i])\n'
            "end\n"
        )
    elif endpoint == "post":
        payload = json.dumps({"title": draft[0], "body": draft[1], "limit": 10})
        body = (
            f"local payload = {_lua_string(payload)}\n"
            'local headers = {["Content-Type"] = "application/json"}\n'
            'request = function() return wrk.format("POST", "/v1/related", headers, payload) end\n'
        )
    else:
        raise ValueError(endpoint)
    return body + _DONE


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_wrk(url: str, script: Path, connections: int, seconds: int) -> dict[str, Any]:
    threads = 1 if connections == 1 else 2
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{int(seconds)}s", "--latency"]
    command += ["--timeout", "10s", "-s", str(script), url]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            data: dict[str, Any] = json.loads(line[len("BENCHJSON ") :])
            data["rps"] = round(data["requests"] / (data["duration_us"] / 1e6), 1)
            data["non_2xx_or_errors"] = sum(v for k, v in data.items() if k.startswith("errors_"))
            return data
    raise RuntimeError(f"wrk gave no result (exit {proc.returncode}): {proc.stdout[-500:]} {proc.stderr[-500:]}")


def run(mode: str, models_dir: Path, ids: list[str], draft: tuple[str, str], workdir: Path) -> dict[str, Any]:
    """Every endpoint x connection count x worker count, on one model."""
    if wrk_path() is None:
        return {"skipped": "wrk is not installed (benchmarks/setup.sh installs the Debian package as root)"}
    seconds, warmup = DURATIONS[mode]
    scripts = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-wrk-", dir=workdir))
    for endpoint in ENDPOINTS:
        scripts[endpoint] = tmp / f"{endpoint}.lua"
        scripts[endpoint].write_text(lua_script(endpoint, ids[:ROTATED_IDS], draft), encoding="utf-8")
    version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.strip().splitlines()
    runs: list[dict[str, Any]] = []

    def measure(server: Server, script: Path, label: str, workers: int) -> None:
        # Sanity check and warm-up (caches, lazily mapped pages in every worker).
        run_wrk(server.url(""), script, 32, warmup)
        for connections in CONNECTIONS:
            cpu = server.cpu_seconds()
            result = run_wrk(server.url(""), script, connections, seconds)
            cpu = server.cpu_seconds() - cpu
            result.update(
                endpoint=label,
                workers=workers,
                connections=connections,
                server_cpu_us_per_request=round(cpu * 1e6 / max(result["requests"], 1), 1),
            )
            runs.append(result)
            log(
                f"http {workers} worker(s) {label:8s} c={connections:<2d} "
                f"{result['rps']:9.1f} req/s  p50 {result['p50_us'] / 1e3:.2f} ms  "
                f"p99 {result['p99_us'] / 1e3:.2f} ms  errors {result['non_2xx_or_errors']}"
            )

    for workers in WORKERS[mode]:
        with serving(models_dir, workers, workdir / "logs") as server:
            for endpoint in ENDPOINTS:
                measure(server, scripts[endpoint], endpoint, workers)
    # The service keeps a per-worker LRU of GET list bodies, and the rotated
    # ids all fit in it: the same route is also measured with the cache off,
    # so that the cost of building a list is on record (its floor is the
    # healthz run of the 2-worker server above, same settings otherwise).
    top = max(WORKERS[mode])
    with serving(models_dir, top, workdir / "logs", {"RECOMMENDER_RESPONSE_CACHE_SIZE": "0"}) as server:
        measure(server, scripts["related"], "related (response cache off)", top)
    shutil.rmtree(tmp, ignore_errors=True)
    for r in runs:
        floor = next(
            x
            for x in runs
            if x["endpoint"] == "healthz" and (x["workers"], x["connections"]) == (r["workers"], r["connections"])
        )
        r["rps_vs_healthz"] = round(r["rps"] / floor["rps"], 3) if floor["rps"] else None
        r["p50_vs_healthz"] = round(r["p50_us"] / floor["p50_us"], 2) if floor["p50_us"] else None
    return {
        "wrk": version[0] if version else "wrk",
        "seconds_per_run": seconds,
        "draft_words": len(draft[0].split()) + len(draft[1].split()),
        "rotated_ids": min(len(ids), ROTATED_IDS),
        "runs": runs,
    }
