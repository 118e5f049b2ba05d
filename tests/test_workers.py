"""Several workers behind one ``recommender serve``: reloads reach them all, /metrics, clean exit.

Real server processes on 127.0.0.1, stopped by PID. Waits are bounded waits
for a condition ("every answer carries the new version within 2 s").
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from recommender.bundle import set_current
from recommender.train import TrainOptions, train

from .conftest import DEMO_CORPUS, write_jsonl
from .servers import Server, evil_articles, http, running_server, wait_for_workers

pytestmark = pytest.mark.slow

TOKEN = "workers-token"
CONVERGE_WITHIN = 2.0  # seconds: every worker serves a new model this soon after a reload
AGREEING_PROBES = 24  # fresh connections in a row that must all see the new version
LOAD_THREADS = 3
MAX_LOAD_REQUESTS = 20_000  # per thread; a bound, the threads stop when the test is done
PATH = "/v1/articles/biz-saltmere-lines-fare-rise/related?limit=3"


def demo_records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DEMO_CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass
class Models:
    folder: Path
    root: Path
    versions: dict[str, str]  # name -> version


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    root = tmp_path_factory.mktemp("workers")
    folder = root / "models"
    records = demo_records()
    versions = {}
    for name, extra, weight in (("b", 1, 2.0), ("c", 2, 1.0), ("a", 0, 2.0)):  # a last: it is current
        corpus = write_jsonl(root / f"{name}.jsonl", [*records, *evil_articles()[:extra]])
        versions[name] = train([corpus], folder, TrainOptions(n_jobs=1, title_weight=weight), keep=20).version
    assert len(set(versions.values())) == 3
    return Models(folder, root, versions)


def version_of(server: Server) -> str | None:
    """The model version of one answer, on a fresh connection (so any worker may answer)."""
    reply = http("GET", server.url(PATH), headers={"Connection": "close"}, timeout=10)
    return reply.json()["model_version"] if reply.status == 200 else None


def logged_worker_pids(server: Server) -> set[str]:
    return set(re.findall(r"Started server process \[(\d+)\]", server.log()))


def wait_until_all_serve(server: Server, version: str, since: float, log_from: int = 0) -> float:
    """Wait until every worker has logged that it serves ``version`` (after ``log_from`` in the log),
    then check AGREEING_PROBES answers in a row carry it; fail after CONVERGE_WITHIN s."""
    deadline = since + CONVERGE_WITHIN
    pids = logged_worker_pids(server)
    assert pids, server.log()
    pending = set(pids)
    while pending:
        loaded = re.findall(rf"\[(\d+)\] serving model {re.escape(version)} ", server.log()[log_from:])
        pending -= set(loaded)
        if time.monotonic() > deadline:
            pytest.fail(
                f"workers {sorted(pending)} of {sorted(pids)} do not serve {version} within {CONVERGE_WITHIN} s"
            )
        time.sleep(0.01)
    done = time.monotonic()
    seen = [version_of(server) for _ in range(AGREEING_PROBES)]
    assert seen == [version] * AGREEING_PROBES, f"every worker logged {version}, yet answers were {seen}"
    return done


@dataclass
class Load:
    """Threads hammering GET related on fresh connections, recording every answer."""

    server: Server
    stop: threading.Event = field(default_factory=threading.Event)
    answers: list[tuple[float, str]] = field(default_factory=list)  # (sent at, version)
    failures: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def run(self) -> None:
        for _ in range(MAX_LOAD_REQUESTS):
            if self.stop.is_set():
                return
            sent = time.monotonic()
            try:
                reply = http("GET", self.server.url(PATH), headers={"Connection": "close"}, timeout=30)
            except OSError as exc:
                self.failures.append(f"request failed: {exc!r}")
                continue
            if reply.status != 200:
                self.failures.append(f"status {reply.status}: {reply.body[:200]!r}")
                continue
            self.answers.append((sent, reply.json()["model_version"]))

    def __enter__(self) -> Load:
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(LOAD_THREADS)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def admin_reload(server: Server, want: str) -> None:
    r = server.request("POST", "/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status == 200, r.body
    assert r.json()["model_version"] == want


def sighup_master(server: Server) -> None:
    os.kill(server.pid, signal.SIGHUP)


def test_five_reloads_reach_every_worker_under_load(models: Models) -> None:
    v = models.versions
    set_current(models.folder, v["a"])
    trained: dict[str, str] = {}

    def train_new() -> None:
        corpus = write_jsonl(models.root / "d.jsonl", [*demo_records(), *evil_articles()])
        trained["d"] = train([corpus], models.folder, TrainOptions(n_jobs=1, title_weight=3.0), keep=20).version

    # (what triggers the reload, the version every worker must then serve)
    steps: list[tuple[str, Callable[[], None], Callable[[], str]]] = [
        ("new current link", lambda: set_current(models.folder, v["b"]), lambda: v["b"]),
        ("admin reload", lambda: (set_current(models.folder, v["c"]), admin_reload(server, v["c"])), lambda: v["c"]),
        ("SIGHUP to the master", lambda: (set_current(models.folder, v["a"]), sighup_master(server)), lambda: v["a"]),
        ("training", train_new, lambda: trained["d"]),
        ("SIGHUP to the master", lambda: (set_current(models.folder, v["b"]), sighup_master(server)), lambda: v["b"]),
    ]
    env = {"RECOMMENDER_ADMIN_TOKEN": TOKEN}
    with running_server(models.folder, workers=4, env=env) as server:
        wait_for_workers(server, 4)
        wait_until_all_serve(server, v["a"], time.monotonic())
        triggers: list[float] = []
        windows: list[tuple[float, str]] = []  # (from when, the only version allowed)
        with Load(server) as load:
            for _, trigger, expected in steps:
                log_from = len(server.log())
                triggers.append(time.monotonic())
                trigger()
                windows.append((wait_until_all_serve(server, expected(), triggers[-1], log_from), expected()))
            time.sleep(0.2)  # a last few answers on the final model
        log = server.log()
        assert server.process.poll() is None
    assert load.failures == []
    assert len(load.answers) > 100
    # After each convergence and until the next trigger, no answer came from another model.
    for (since, version), until in zip(windows, [*triggers[1:], float("inf")], strict=True):
        stale = [got for sent, got in load.answers if since <= sent < until and got != version]
        assert stale == [], f"answers from another model after every worker served {version}"
    assert "restarting processes" not in log and "was not ready in time" not in log


def test_sighup_to_the_master_signals_workers_without_restarting_them(models: Models) -> None:
    v = models.versions
    set_current(models.folder, v["a"])
    # The link watcher off: only the forwarded signal can move the workers.
    env = {"RECOMMENDER_MODEL_WATCH_INTERVAL": "0"}
    with running_server(models.folder, workers=3, env=env) as server:
        wait_for_workers(server, 3)
        wait_until_all_serve(server, v["a"], time.monotonic())
        workers_before = logged_worker_pids(server)
        assert len(workers_before) == 3
        set_current(models.folder, v["c"])
        sighup_master(server)
        wait_until_all_serve(server, v["c"], time.monotonic())
        assert logged_worker_pids(server) == workers_before
        assert server.process.poll() is None


# --- item 3: /metrics with several workers; the metrics folder goes with the server ---------------------


def model_info_versions(text: str) -> set[str]:
    return set(re.findall(r'^recommender_model_info\{version="([^"]+)"\} 1\.0$', text, re.MULTILINE))


def metrics_folders(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("recommender-metrics-*"))


def test_metrics_show_only_the_current_version_with_workers(models: Models, tmp_path: Path) -> None:
    v = models.versions
    set_current(models.folder, v["a"])
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with running_server(models.folder, workers=2, env={"TMPDIR": str(tmp)}) as server:
        wait_for_workers(server, 2)
        wait_until_all_serve(server, v["a"], time.monotonic())
        assert model_info_versions(server.get("/metrics").body.decode()) == {v["a"]}
        set_current(models.folder, v["b"])
        sighup_master(server)
        wait_until_all_serve(server, v["b"], time.monotonic())
        for _ in range(10):  # any worker may answer
            reply = http("GET", server.url("/metrics"), headers={"Connection": "close"})
            text = reply.body.decode()
            assert model_info_versions(text) == {v["b"]}, text
            assert re.search(r"^recommender_model_articles \d+", text, re.MULTILINE)
        # The request counters are still summed over the workers.
        assert re.search(r'^recommender_http_requests_total\{method="GET",route="/metrics",status="200"\} ', text, re.M)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_metrics_folder_is_removed_when_the_server_exits(models: Models, tmp_path: Path, signum: int) -> None:
    set_current(models.folder, models.versions["a"])
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with running_server(models.folder, workers=2, env={"TMPDIR": str(tmp)}) as server:
        assert len(metrics_folders(tmp)) == 1
        os.kill(server.pid, signum)
        server.process.wait(timeout=30)
        assert metrics_folders(tmp) == [], server.log()
