"""Acceptance of the live index (issue 10) against a real ``recommender serve --workers 2``.

Real server processes on 127.0.0.1 (stopped by PID), spoken to over HTTP;
models trained with the real command line. What is checked:

1. 20 Newsgroups: a bundle of 90 % plus the other 10 % written one PUT at a
   time serves lists close to a full retrain (recall, precision by label,
   reverse pairs).
2. Freshness: within 1 s of an acknowledged write, every worker serves it (the
   one deadline of this file, part of the product's promise).
3. No loss: kill -9 of the server during a stream of writes, and of a
   compaction; every acknowledged write survives.
4. A compaction under load fails no request, and leaves lists equal to a
   training of the new bundle's articles.
5. Refused writes over the real server change nothing.

Every probe that must reach every worker goes on a fresh connection, and
``servers.probe`` names the worker that answered it, so "every worker" is
checked, not assumed.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from recommender.bundle import current_version
from recommender.changelog import Change, ChangeLog
from recommender.corpus import article_record, parse_record
from recommender.recommend import Recommender
from recommender.values import SCORE_TOLERANCE

from .conftest import DEMO_CORPUS, ROOT, shared_corpus, write_jsonl
from .servers import Reply, Server, probe, running_server, start_server, wait_for_workers, worker_pids
from .test_e2e import demo_records, raw_exchange, train_cli
from .test_kill import synthetic_corpus
from .test_live_api import last_seq
from .test_live_serve import NEW

TOKEN = "acceptance-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {**AUTH, "Content-Type": "application/json"}
# The default poll interval (0.1 s) on purpose: the freshness promise is made with it.
ENV = {"RECOMMENDER_ADMIN_TOKEN": TOKEN}
WORKERS = 2
FRESH_WITHIN = 1.0  # seconds from an acknowledged write to every worker serving it (issue 10)
STREAK = 20  # good answers in a row on fresh connections, before the deadline
SETTLE = 60.0  # seconds: a generous bound for waits that are not a promise (a compaction loaded, ...)
LIMIT = 10

# Issue 10's figures for 20 Newsgroups, 90 % trained + 10 % written live against a full retrain.
MIN_RECALL = 0.90
MAX_PRECISION_GAP = 0.01
MIN_REVERSE_SHARE = 0.95


def demo_ids() -> list[str]:
    return [record["id"] for record in demo_records()]


def article_path(article_id: str, suffix: str = "") -> str:
    return f"/v1/articles/{urllib.parse.quote(article_id, safe='/')}{suffix}"


def related_path(article_id: str, limit: int = LIMIT) -> str:
    return article_path(article_id, f"/related?limit={limit}")


def item_ids(reply: Reply) -> list[str]:
    return [item["id"] for item in reply.json()["items"]]


class Client:
    """One keep-alive HTTP/1.1 connection (requests in sequence; reopened if the server closes it)."""

    def __init__(self, server: Server, timeout: float = 60.0) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        self.connection.request(method, path, body=body, headers=headers or {})
        response = self.connection.getresponse()
        return Reply(response.status, dict(response.getheaders()), response.read())

    def put(self, record: dict[str, Any]) -> Reply:
        return self.request("PUT", article_path(record["id"]), json.dumps(record).encode(), JSON)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fetch_lists(server: Server, ids: list[str], version: str, threads: int = 2) -> dict[str, list[str]]:
    """Every id's list (top LIMIT) over keep-alive connections; each answer must carry ``version``."""
    lists: dict[str, list[str]] = {}
    failures: list[str] = []

    def run(part: list[str]) -> None:
        with Client(server) as client:
            for article_id in part:
                reply = client.request("GET", related_path(article_id))
                if reply.status != 200 or reply.json()["model_version"] != version:
                    failures.append(f"{article_id}: {reply.status} {reply.body[:200]!r}")
                    return
                lists[article_id] = item_ids(reply)

    workers = [threading.Thread(target=run, args=(ids[n::threads],)) for n in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not failures, failures[:5]
    return lists


Check = tuple[str, Callable[[Reply], bool]]


def until_every_worker_agrees(server: Server, checks: list[Check], deadline: float, what: str) -> tuple[int, float]:
    """Probe ``checks`` in turn on fresh connections until STREAK answers in a row are good and every
    check was answered good by every worker within that streak; fail once ``deadline`` has passed.

    Returns the number of probes sent and the time left before the deadline.
    """
    workers = set(worker_pids(server))
    streak = 0
    covered: set[tuple[int, int]] = set()
    answered_by: set[int] = set()
    history: list[tuple[str, int, int | None, bool]] = []
    n = 0
    while True:
        index = n % len(checks)
        path, good = checks[index]
        reply, pid = probe(server, "GET", path)
        ok = good(reply)
        history.append((path, reply.status, pid, ok))
        n += 1
        if pid is not None:
            answered_by.add(pid)
        if ok:
            streak += 1
            if pid is not None:
                covered.add((index, pid))
        else:
            streak, covered = 0, set()
        done = (
            streak >= STREAK
            and len(answered_by) >= WORKERS
            and all((c, pid) in covered for c in range(len(checks)) for pid in answered_by)
        )
        now = time.monotonic()
        if done and now <= deadline:
            return n, deadline - now
        if now > deadline:
            bad = [h for h in history if not h[3]][-6:]
            pytest.fail(
                f"{what}: not every worker within the deadline ({len(history)} probes, streak {streak}, "
                f"workers answering {sorted(answered_by)} of {sorted(workers)}); last bad answers {bad}"
            )


def wait_for_version(server: Server, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    """Wait (bounded by SETTLE, not a promise) until every worker's /v1/model passes ``check``."""
    summaries: list[dict[str, Any]] = []

    def good(reply: Reply) -> bool:
        if reply.status != 200:
            return False
        summaries.append(reply.json())
        return check(summaries[-1])

    until_every_worker_agrees(server, [("/v1/model", good)], time.monotonic() + SETTLE, what)
    return summaries[-1]


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recommender", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("acceptance-demo") / "models"
    train_cli(DEMO_CORPUS, models)
    return models


@pytest.fixture
def demo_models(demo_template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(demo_template, tmp_path / "models", symlinks=True))


# --- 1. 20 Newsgroups: 90 % trained, 10 % written live, against a full retrain ----------------


@dataclass
class Agreement:
    """How close the served lists are to a full retrain's."""

    recall: float
    scored: int  # articles whose retrain list is not empty
    precision_served: float
    precision_retrain: float
    reverse_kept: int
    reverse_pairs: int

    @property
    def reverse_share(self) -> float:
        return self.reverse_kept / self.reverse_pairs if self.reverse_pairs else 1.0

    def __str__(self) -> str:
        return (
            f"recall@{LIMIT} {self.recall:.4f} over {self.scored} lists; P@{LIMIT} served {self.precision_served:.4f}"
            f" retrain {self.precision_retrain:.4f} (gap {self.precision_served - self.precision_retrain:+.4f});"
            f" reverse pairs {self.reverse_kept}/{self.reverse_pairs} = {self.reverse_share:.4f}"
        )


def agreement(
    ids: list[str],
    served: dict[str, list[str]],
    retrain: dict[str, list[str]],
    labels: dict[str, str],
    upserted: set[str],
) -> Agreement:
    recalls = [len(set(served[a]) & set(retrain[a])) / len(retrain[a]) for a in ids if retrain[a]]

    def precision(lists: dict[str, list[str]]) -> float:
        hits = sum(labels[i] == labels[a] for a in ids for i in lists[a][:LIMIT])
        return hits / (LIMIT * len(ids))

    kept = pairs = 0
    for x in upserted:
        for j in served[x]:
            if j not in upserted and x in retrain[j]:
                pairs += 1
                kept += x in served[j]
    return Agreement(sum(recalls) / len(recalls), len(recalls), precision(served), precision(retrain), kept, pairs)


@pytest.mark.slow
@pytest.mark.corpora
def test_twenty_newsgroups_written_live_matches_a_full_retrain(tmp_path: Path) -> None:
    source = shared_corpus("20newsgroups.jsonl.gz")
    records, labels = [], {}
    with gzip.open(source, "rt", encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            labels[record["id"]] = record.pop("category")  # the label stays out of the model
            records.append(record)
    order = list(range(len(records)))
    random.Random(7).shuffle(order)
    held = order[: round(len(records) * 0.10)]
    held_set = set(held)
    base = [r for i, r in enumerate(records) if i not in held_set]
    live_models, full_models = tmp_path / "live", tmp_path / "full"
    timings: dict[str, float] = {}

    started = time.monotonic()
    base_version = train_cli(write_jsonl(tmp_path / "base.jsonl", base), live_models)
    train_cli(write_jsonl(tmp_path / "all.jsonl", records), full_models)
    timings["two trainings"] = time.monotonic() - started

    ids = [r["id"] for r in records]
    with running_server(live_models, env=ENV, workers=WORKERS) as server:
        wait_for_workers(server, WORKERS)
        started = time.monotonic()
        with Client(server) as client:
            for n, i in enumerate(held, start=1):
                reply = client.put(records[i])
                assert reply.status == 201, reply.body
                assert reply.json() == {"id": records[i]["id"], "seq": n, "model_version": f"{base_version}+{n}"}
        timings[f"{len(held)} PUTs"] = time.monotonic() - started
        version = f"{base_version}+{len(held)}"
        wait_for_version(server, lambda s: s["version"] == version, "every worker applied the 10 %")
        started = time.monotonic()
        served = fetch_lists(server, ids, version)
        timings[f"{len(ids)} lists over HTTP"] = time.monotonic() - started

    started = time.monotonic()
    full = Recommender.load(full_models)
    retrain = {a: [item.id for item in full.related(a, LIMIT).items] for a in ids}
    timings["retrain lists in process"] = time.monotonic() - started

    measured = agreement(ids, served, retrain, labels, {records[i]["id"] for i in held})
    print(f"\n20 Newsgroups, {len(held)} of {len(ids)} written live: {measured}")
    print("timings: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))
    failed = []
    if measured.recall < MIN_RECALL:
        failed.append(f"recall@{LIMIT} {measured.recall:.4f} < {MIN_RECALL}")
    if abs(measured.precision_served - measured.precision_retrain) > MAX_PRECISION_GAP:
        failed.append(f"P@{LIMIT} differs from the retrain's by more than {MAX_PRECISION_GAP}")
    if measured.reverse_share < MIN_REVERSE_SHARE:
        failed.append(f"reverse pairs kept {measured.reverse_share:.4f} < {MIN_REVERSE_SHARE}")
    assert not failed, f"{'; '.join(failed)} (measured: {measured})"


# --- 2. freshness on every worker ------------------------------------------------------------

FERRY_ID = "live/saltmere-night-ferry-strike"
FERRY = {"id": FERRY_ID, **NEW}  # the article of test_live_serve, under another id
VICTIM = "biz-saltmere-lines-fare-rise"


def predicted_holders(models: Path, record: dict[str, Any]) -> list[str]:
    """The articles whose top LIMIT take ``record`` in once it is written: the library's own answer, in process."""
    rec = Recommender.load(models)
    rec.apply([Change(rec.log_seq + 1, "upsert", record["id"], article_record(parse_record(record)), 0.0)])
    return [a for a in demo_ids() if record["id"] in [item.id for item in rec.related(a, LIMIT).items]]


@pytest.mark.slow
def test_every_worker_serves_a_write_and_a_delete_within_a_second(demo_models: Path) -> None:
    holders = predicted_holders(demo_models, FERRY)
    assert holders, "the new article should enter some list"
    base = current_version(demo_models)
    with running_server(demo_models, env=ENV, workers=WORKERS) as server:
        wait_for_workers(server, WORKERS)
        reply, _ = probe(server, "PUT", article_path(FERRY_ID), json.dumps(FERRY).encode(), JSON)
        acknowledged = time.monotonic()
        assert reply.status == 201, reply.body
        assert reply.json() == {"id": FERRY_ID, "seq": 1, "model_version": f"{base}+1"}
        checks: list[Check] = [
            (article_path(FERRY_ID), lambda r: r.status == 200 and r.json()["title"] == FERRY["title"]),
            (related_path(FERRY_ID), lambda r: r.status == 200 and bool(r.json()["items"])),
            (related_path(holders[0]), lambda r: r.status == 200 and FERRY_ID in item_ids(r)),
        ]
        probes, left = until_every_worker_agrees(server, checks, acknowledged + FRESH_WITHIN, "the new article")
        print(f"\nwrite: every worker agreed after {FRESH_WITHIN - left:.3f} s ({probes} probes)")

        with Client(server) as client:
            lists = {a: item_ids(client.request("GET", related_path(a))) for a in [*demo_ids(), FERRY_ID]}
        victim_holders = [a for a, items in lists.items() if VICTIM in items]
        assert victim_holders
        reply, _ = probe(server, "DELETE", article_path(VICTIM), headers=AUTH)
        acknowledged = time.monotonic()
        assert reply.status == 204, reply.body
        checks = [
            (article_path(VICTIM), lambda r: r.status == 404),
            (related_path(VICTIM), lambda r: r.status == 404),
            *((related_path(a), lambda r: r.status == 200 and VICTIM not in item_ids(r)) for a in victim_holders),
        ]
        probes, left = until_every_worker_agrees(server, checks, acknowledged + FRESH_WITHIN, "the deleted article")
        print(f"delete: every worker agreed after {FRESH_WITHIN - left:.3f} s ({probes} probes)")
        # Not timed: no list at all, on any worker, holds it (a list that ran short refilled without it).
        for a in lists:
            if a != VICTIM:
                for _ in range(4):
                    reply, _ = probe(server, "GET", related_path(a, 50))
                    assert reply.status == 200 and VICTIM not in item_ids(reply), a


# --- 3. no acknowledged write is lost -------------------------------------------------------


@dataclass
class Stream:
    """PUTs in sequence from a thread: what was acknowledged, and what was in flight when the server died."""

    server: Server
    acknowledged: dict[str, str] = field(default_factory=dict)  # id -> title
    in_flight: tuple[str, str] | None = None
    error: BaseException | None = None
    thread: threading.Thread | None = None

    def write(self, n: int) -> dict[str, Any]:
        topic = ["market", "energy", "league", "galaxy", "harvest"][n % 5]
        if n % 4 == 3:  # every fourth write replaces a trained article
            return {"id": f"a{n * 7}", "title": f"{topic} news edited live {n}", "body": f"{topic} edited {n}"}
        return {"id": f"live-{n}", "title": f"{topic} news written live {n}", "body": f"{topic} {topic} report {n}"}

    def run(self) -> None:
        with Client(self.server, timeout=30) as client:
            for n in range(100_000):  # a bound; the server dies long before
                record = self.write(n)
                self.in_flight = (record["id"], record["title"])
                try:
                    reply = client.put(record)
                except (OSError, http.client.HTTPException) as exc:
                    self.error = exc
                    return
                if reply.status not in (200, 201):
                    self.error = AssertionError(f"{record['id']}: {reply.status} {reply.body[:200]!r}")
                    return
                self.acknowledged[record["id"]] = record["title"]
                self.in_flight = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()


def assert_writes_present(server: Server, acknowledged: dict[str, str], originals: dict[str, str]) -> None:
    with Client(server) as client:
        for article_id, title in acknowledged.items():
            reply = client.request("GET", article_path(article_id))
            assert reply.status == 200, f"acknowledged write {article_id} lost: {reply.status}"
            assert reply.json()["title"] == title, f"{article_id}: {reply.json()['title']!r}, not {title!r}"
            if article_id not in originals:
                assert client.request("GET", related_path(article_id)).status == 200


@pytest.fixture(scope="module")
def synthetic_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8,000 articles: large enough that a compaction can be killed while it fits."""
    root = tmp_path_factory.mktemp("acceptance-synthetic")
    models = root / "models"
    train_cli(synthetic_corpus(root / "synthetic.jsonl", 8000), models, "--min-df", "1")
    return models


# A checkpoint of the live changes every few writes: the kill may also land while one is written,
# and a restart restores one and replays the rest of the log.
KILL_ENV = {**ENV, "RECOMMENDER_CHECKPOINT_EVERY": "7"}


def checkpoints(models: Path) -> list[Path]:
    """The checkpoints of live changes in ``models`` (none while the folder is not there)."""
    return [p for p in (models / "live").glob("*+*") if p.is_dir()]


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_write(synthetic_template: Path, tmp_path: Path) -> None:
    models = Path(shutil.copytree(synthetic_template, tmp_path / "models", symlinks=True))
    titles = {}
    rec = Recommender.load(models)
    for n in range(0, 1140, 4):
        article_id = f"a{(n + 3) * 7}"
        titles[article_id] = rec.article(article_id)["title"]
    del rec

    server = start_server(models, env=KILL_ENV, workers=WORKERS)
    try:
        stream = Stream(server)
        stream.start()
        deadline = time.monotonic() + SETTLE
        # Kill once 40 writes are acknowledged and a checkpoint is on disk: the workers write
        # one every 7 changes, from a thread, so on a quick machine it may lag the writes.
        while stream.error is None and (len(stream.acknowledged) < 40 or not checkpoints(models)):
            assert time.monotonic() < deadline, "the stream of writes did not progress, or no checkpoint came"
            time.sleep(0.005)
        os.killpg(server.pid, signal.SIGKILL)
        server.process.wait(timeout=30)
        assert stream.thread is not None
        stream.thread.join(timeout=60)
        # The server died under the stream.
        assert isinstance(stream.error, OSError | http.client.HTTPException), stream.error
    finally:
        server.stop()
    acknowledged, in_flight = dict(stream.acknowledged), stream.in_flight
    assert checkpoints(models), "no checkpoint was written before the kill"

    with running_server(models, env=KILL_ENV, workers=WORKERS) as server:
        wait_for_workers(server, WORKERS)
        assert_writes_present(server, acknowledged, titles)
        if in_flight is not None:  # all or nothing: its title, or what was there before it
            article_id, title = in_flight
            reply, _ = probe(server, "GET", article_path(article_id))
            before = titles.get(article_id)
            if before is None:
                assert reply.status == 404 or (reply.status == 200 and reply.json()["title"] == title)
            else:
                assert reply.status == 200 and reply.json()["title"] in (title, before)
        logged = last_seq(models)
        assert logged >= len(acknowledged)
        wait_for_version(server, lambda s: s["log_seq"] == logged, "every worker replayed the log")

        # kill -9 of a compaction while it fits; the server keeps serving meanwhile.
        compaction = subprocess.Popen(
            [sys.executable, "-m", "recommender", "compact", "--models-dir", str(models)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert compaction.stderr is not None
        os.set_blocking(compaction.stderr.fileno(), False)
        seen = bytearray()
        deadline = time.monotonic() + SETTLE
        try:
            while not (b"neighbours:" in seen and b"article/s" in seen):
                assert compaction.poll() is None, f"the compaction ended before it was killed: {bytes(seen)!r}"
                assert time.monotonic() < deadline, "the compaction never reached its fitting step"
                seen.extend(compaction.stderr.read() or b"")
                time.sleep(0.002)
            compaction.send_signal(signal.SIGKILL)
            assert compaction.wait(timeout=30) == -signal.SIGKILL
        finally:
            if compaction.poll() is None:
                compaction.kill()
                compaction.wait(timeout=30)
            compaction.stderr.close()
        assert_writes_present(server, acknowledged, titles)
    assert last_seq(models) == logged

    with running_server(models, env=KILL_ENV, workers=WORKERS) as server:
        wait_for_workers(server, WORKERS)
        assert_writes_present(server, acknowledged, titles)
        base = server.get("/v1/model").json()["base_version"]
        done = cli("compact", "--quiet", "--models-dir", str(models))
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"compacted {logged} change(s) through seq {logged} into ")
        compacted = current_version(models)
        assert compacted != base
        wait_for_version(server, lambda s: s["version"] == compacted, "every worker loaded the compaction")
        assert_writes_present(server, acknowledged, titles)
        with ChangeLog(models) as log:
            assert list(log.since(0)) == []  # folded in, then truncated
        # Sequence numbers go on past the truncated ones (a reused one would be skipped by replay).
        reply, _ = probe(server, "PUT", article_path("after"), json.dumps(COMET).encode(), JSON)
        assert reply.status == 201, reply.body
        assert reply.json() == {"id": "after", "seq": logged + 1, "model_version": f"{compacted}+{logged + 1}"}


# --- 4. a compaction under load -------------------------------------------------------------

LOAD_CONNECTIONS = 32
WRITES_PER_SECOND = 10
WRK_SCRIPT = """
local paths = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%%d status=%%d connect=%%d read=%%d write=%%d timeout=%%d\\n",
    summary.requests, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
end
"""


class Load:
    """GET related on LOAD_CONNECTIONS connections, with wrk when installed, else with threads; failures counted."""

    def __init__(self, server: Server, paths: list[str], folder: Path) -> None:
        self.server, self.paths, self.folder = server, paths, folder
        self.wrk = shutil.which("wrk")
        self.process: subprocess.Popen[str] | None = None
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.requests = 0
        self.failures: list[str] = []
        self.report = ""

    def _thread(self, offset: int) -> None:
        with Client(self.server, timeout=30) as client:
            n = offset
            while not self.stop.is_set():
                path = self.paths[n % len(self.paths)]
                n += 1
                try:
                    reply = client.request("GET", path)
                except OSError as exc:
                    self.failures.append(f"{path}: {exc!r}")
                    client.close()
                    continue
                self.requests += 1
                if not 200 <= reply.status < 400:
                    self.failures.append(f"{path}: {reply.status} {reply.body[:200]!r}")

    def __enter__(self) -> Load:
        if self.wrk:
            script = self.folder / "related.lua"
            script.write_text(WRK_SCRIPT % ", ".join(json.dumps(p) for p in self.paths), encoding="utf-8")
            command = [self.wrk, "-t2", f"-c{LOAD_CONNECTIONS}", "-d600s", "--timeout", "30s", "-s", str(script)]
            self.process = subprocess.Popen(
                [*command, self.server.base_url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        else:
            self.threads = [threading.Thread(target=self._thread, args=(n,)) for n in range(LOAD_CONNECTIONS)]
            for t in self.threads:
                t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)  # wrk stops and reports
            self.report, _ = self.process.communicate(timeout=60)
            match = re.search(r"RESULT requests=(\d+) (.*)", self.report)
            assert match, self.report
            self.requests = int(match.group(1))
            errors = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2))}
            self.failures = [f"wrk: {k} errors {v}" for k, v in errors.items() if v]
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


@dataclass
class Writer:
    """About WRITES_PER_SECOND PUTs a second: new articles and edits of trained ones."""

    server: Server
    records: list[dict[str, Any]]
    stop: threading.Event = field(default_factory=threading.Event)
    written: int = 0
    errors: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None

    def run(self) -> None:
        with Client(self.server, timeout=60) as client:
            n = 0
            while not self.stop.is_set():
                origin = self.records[n % len(self.records)]
                other = self.records[(n * 5 + 3) % len(self.records)]
                if n % 3 == 2:
                    record = {**origin, "title": f"{origin['title']} (updated {n})"}
                else:
                    first = other["body"].split(". ")[0]
                    record = {**origin, "id": f"live-{n}", "title": f"{other['title']}, {n}", "body": first}
                n += 1
                try:
                    reply = client.put(record)
                except OSError as exc:
                    self.errors.append(f"{record['id']}: {exc!r}")
                    client.close()
                    continue
                if reply.status not in (200, 201):
                    self.errors.append(f"{record['id']}: {reply.status} {reply.body[:200]!r}")
                self.written += 1
                self.stop.wait(1 / WRITES_PER_SECOND)

    def __enter__(self) -> Writer:
        self.thread = threading.Thread(target=self.run)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=60)


def wait_for_writes(writer: Writer, count: int) -> None:
    deadline = time.monotonic() + SETTLE
    while writer.written < count:
        assert time.monotonic() < deadline and not writer.errors, (writer.written, writer.errors[:3])
        time.sleep(0.02)


@pytest.mark.slow
def test_a_compaction_under_load_fails_nothing_and_equals_a_training(demo_models: Path, tmp_path: Path) -> None:
    records = demo_records()
    base = current_version(demo_models)
    with running_server(demo_models, env=ENV, workers=WORKERS) as server:
        wait_for_workers(server, WORKERS)
        paths = [related_path(r["id"]) for r in records]
        with Load(server, paths, tmp_path) as load:
            with Writer(server, records) as writer:
                wait_for_writes(writer, 20)
                first = cli("compact", "--quiet", "--models-dir", str(demo_models))  # while writes go on
                assert first.returncode == 0, first.stderr
                middle = current_version(demo_models)
                assert middle != base
                wait_for_version(server, lambda s: s["base_version"] == middle, "every worker loaded it")
                wait_for_writes(writer, writer.written + 10)
            assert not writer.errors, writer.errors[:5]
            second = cli("compact", "--quiet", "--models-dir", str(demo_models))  # folds in the rest
            assert second.returncode == 0, second.stderr
            final = current_version(demo_models)
            assert final not in (base, middle)
            summary = wait_for_version(server, lambda s: s["version"] == final, "every worker loaded the last one")
            assert summary["log_seq"] == writer.written
        print(f"\nload: {load.requests} requests ({'wrk' if load.wrk else 'threads'}), {writer.written} writes")
        assert load.requests > 0
        assert not load.failures, f"{load.failures[:5]}\n{load.report}"

        ids = [json.loads(line)["id"] for line in (demo_models / final / "articles.jsonl").open(encoding="utf-8")]
        assert len(ids) == len(records) + writer.written - writer.written // 3
        served: dict[str, list[tuple[str, float]]] = {}
        with Client(server) as client:
            for article_id in ids:
                reply = client.request("GET", related_path(article_id))
                assert reply.status == 200 and reply.json()["model_version"] == final
                served[article_id] = [(item["id"], item["score"]) for item in reply.json()["items"]]

    scratch = tmp_path / "scratch"
    train_cli(demo_models / final / "articles.jsonl", scratch)
    trained = Recommender.load(scratch)
    for article_id in ids:
        expected = trained.related(article_id, LIMIT).items
        assert [i for i, _ in served[article_id]] == [item.id for item in expected], article_id
        for (_, score), item in zip(served[article_id], expected, strict=True):
            assert abs(score - item.score) <= SCORE_TOLERANCE, (article_id, item.id, score, item.score)


# --- 5. refused writes change nothing -------------------------------------------------------

MAX_BODY = 1024 * 1024  # the default RECOMMENDER_MAX_BODY_BYTES
ID_RULE = "id must be at most 200 printable characters"
COMET = {"title": "Comet seen from the Saltmere observatory", "body": "Astronomers saw the comet at dawn."}


OVERSIZED = json.dumps({"title": "comet", "body": "x" * MAX_BODY}).encode()


def oversized_put(server: Server) -> Reply:
    body = OVERSIZED
    head = (
        f"PUT {article_path('n-big')} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    status, answer = raw_exchange(server.port, head, body)
    return Reply(status, {}, answer)


@pytest.mark.slow
def test_refused_writes_over_the_real_server_change_nothing(demo_models: Path) -> None:
    """What test_live_api checks in process, over a real server with two workers: nothing logged, no new version."""
    base = current_version(demo_models)
    with running_server(demo_models, env=ENV, workers=WORKERS) as server:
        wait_for_workers(server, WORKERS)
        reply, _ = probe(server, "PUT", article_path("n0"), json.dumps(COMET).encode(), JSON)
        assert reply.status == 201, reply.body  # one good write first: the version to keep is BUNDLE+1
        version = f"{base}+1"
        wait_for_version(server, lambda s: s["version"] == version, "the good write")
        wrong = {"Authorization": "Bearer wrong", "Content-Type": "application/json"}
        batch = {**AUTH, "Content-Type": "application/x-ndjson"}
        refusals: list[tuple[str, Callable[[], Reply], int, str]] = [
            (
                "PUT with a wrong token",
                lambda: probe(server, "PUT", article_path("n1"), json.dumps(COMET).encode(), wrong)[0],
                403,
                "wrong admin token",
            ),
            (
                "DELETE with a wrong token",
                lambda: probe(server, "DELETE", article_path(VICTIM), headers=wrong)[0],
                403,
                "wrong admin token",
            ),
            (
                "a batch with a wrong token",
                lambda: probe(server, "POST", "/v1/admin/articles", b'{"id": "n1", "title": "comet"}\n', wrong)[0],
                403,
                "wrong admin token",
            ),
            (
                "PUT without a token",
                lambda: probe(
                    server, "PUT", article_path("n1"), json.dumps(COMET).encode(), {"Content-Type": "application/json"}
                )[0],
                401,
                "admin token required: send 'Authorization: Bearer <token>'",
            ),
            (
                "an oversized PUT",
                lambda: oversized_put(server),
                413,
                f"request body must be at most {MAX_BODY} bytes, got {len(OVERSIZED)}",
            ),
            (
                "an id of 201 characters",
                lambda: probe(server, "PUT", article_path("x" * 201), json.dumps(COMET).encode(), JSON)[0],
                422,
                f"{ID_RULE}, got 201 characters: {'x' * 20!r}...",
            ),
            (
                "a malformed JSON line in a batch",
                lambda: probe(
                    server, "POST", "/v1/admin/articles", b'{"id": "n1", "title": "comet"}\n{"id": "n2"\n', batch
                )[0],
                422,
                "line 2: malformed JSON: Expecting ',' delimiter at column 12",
            ),
        ]
        for what, send, status, detail in refusals:
            reply = send()
            assert reply.status == status, (what, reply.status, reply.body[:300])
            assert reply.json()["detail"] == detail, what
            assert last_seq(demo_models) == 1, what
        # Every worker still serves version BUNDLE+1 and what it served before.
        checks: list[Check] = [
            ("/v1/model", lambda r: r.status == 200 and r.json()["version"] == version and r.json()["log_seq"] == 1),
            (article_path("n1"), lambda r: r.status == 404),
            (article_path(VICTIM), lambda r: r.status == 200),
            (article_path("x" * 201), lambda r: r.status == 404),
        ]
        until_every_worker_agrees(server, checks, time.monotonic() + SETTLE, "nothing changed")
        reply, _ = probe(server, "PUT", article_path("n3"), json.dumps(COMET).encode(), JSON)
        assert reply.status == 201 and reply.json()["seq"] == 2  # no sequence number was spent on a refusal
