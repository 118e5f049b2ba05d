"""Suite 7: the live index (issue 10): writes over HTTP against a full retrain, freshness, speed, no loss.

Everything runs against real ``recommender serve --workers 2`` processes on
127.0.0.1 (their own process groups, stopped or killed by their PIDs) and the
``recommender train``/``upsert``/``compact`` commands as subprocesses:

1. quality: a seeded split of the labeled corpus (``random.Random(7).shuffle``
   of the row order, the first 10 % held out, labels stripped), trained on the
   other 90 %, the held-out articles upserted one PUT at a time; every
   article's served list (limit 10) against a full retrain on 100 % loaded in
   process: recall@10, P@10 by label of both, and whether an upserted article
   sits in its neighbours' lists where the retrain puts it;
2. freshness: after a sample of those PUTs (and of DELETEs), fresh
   connections (spread over the two workers by the kernel) until 10
   consecutive answers agree that the change is served;
3. speed on arXiv: single PUTs end to end, batches of 1,000 through
   ``POST /v1/admin/articles``, and GET related under wrk without and with a
   writer at 10 PUT/s (the ratio of the medians);
4. no loss: kill -9 of the server's process group during a stream of writes,
   of ``recommender compact`` half-way through; the replay time of a log of
   10,000 upserts at ``Recommender.load`` (against ``replay=False``);
5. compaction under load: wrk + a writer at 10 PUT/s while ``recommender
   compact`` runs; then the served lists against ``recommender train`` on the
   compacted bundle's own ``articles.jsonl``.

``run(mode, workdir, corpus, speed_models)`` returns the figures as a dict.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .bench_http import Server, lua_script, run_wrk, start_server, wrk_path
from .synthetic import ROOT, read_records

TOKEN = "bench-live-admin-token"
K = 10
SEED = 7
PLAN: dict[str, dict[str, Any]] = {
    "full": {
        "fresh_samples": 50,
        "delete_samples": 50,
        "single_puts": 300,
        "batch": 1_000,
        "batches": 5,
        "wrk_seconds": 6,
        "wrk_rounds": 5,
        "kill_after": 3.0,
        "replay_changes": 10_000,
        "replay_rounds": 3,
        "logged_before_compaction": 300,
        "load_seconds": 36,
    },
    "quick": {
        "fresh_samples": 10,
        "delete_samples": 10,
        "single_puts": 60,
        "batch": 200,
        "batches": 1,
        "wrk_seconds": 2,
        "wrk_rounds": 1,
        "kill_after": 1.5,
        "replay_changes": 1_000,
        "replay_rounds": 1,
        "logged_before_compaction": 60,
        "load_seconds": 12,
    },
}
WRITER_RATE = 10.0  # PUT/s of the background writer


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# Pure figures (unit-tested) --------------------------------------------------


def split_rows(n: int, seed: int = SEED, share: float = 0.1) -> tuple[list[int], list[int]]:
    """(held-out rows in shuffled order, kept rows in corpus order): the first ``share`` of a seeded shuffle."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    held = order[: int(n * share)]
    chosen = set(held)
    return held, [i for i in range(n) if i not in chosen]


def mean_recall(got: dict[str, list[str]], want: dict[str, list[str]]) -> float | None:
    """Mean over the ids whose ``want`` list is not empty of |got & want| / |want|."""
    shares = [len(set(got.get(i, ())) & set(w)) / len(w) for i, w in want.items() if w]
    return sum(shares) / len(shares) if shares else None


def precision_by_label(lists: dict[str, list[str]], labels: dict[str, str | None], k: int = K) -> float | None:
    """Items sharing their source's label over k per source (``recommender evaluate``'s P@k)."""
    if not lists:
        return None
    hits = sum(sum(1 for j in items[:k] if labels.get(j) == labels.get(i)) for i, items in lists.items())
    return hits / (k * len(lists))


def reverse_presence(
    live: dict[str, list[str]], retrain: dict[str, list[str]], new: set[str]
) -> dict[str, float | int | None]:
    """Whether new articles sit in old articles' live lists where the retrain puts them.

    ``own``: for each new x and each old j of x's own live list such that the
    retrain lists x for j, is x in j's live list. ``all``: every retrain pair
    (old j, new x in j's retrain list), is x in j's live list.
    """
    own_total = own_hits = all_total = all_hits = 0
    for x in new:
        for j in live.get(x, ()):
            if j in new or x not in retrain.get(j, ()):
                continue
            own_total += 1
            own_hits += x in live.get(j, ())
    for j, items in retrain.items():
        if j in new:
            continue
        for x in items:
            if x in new:
                all_total += 1
                all_hits += x in live.get(j, ())
    return {
        "own_pairs": own_total,
        "own_share": own_hits / own_total if own_total else None,
        "all_pairs": all_total,
        "all_share": all_hits / all_total if all_total else None,
    }


def percentiles(values: Sequence[float]) -> dict[str, Any]:
    """count, p50, p99 and max (nearest rank) of a sample."""
    if not values:
        return {"count": 0, "p50": None, "p99": None, "max": None}
    s = sorted(values)

    def rank(q: float) -> float:
        return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]

    return {"count": len(s), "p50": rank(0.50), "p99": rank(0.99), "max": s[-1]}


# HTTP ---------------------------------------------------------------------------


class Http:
    """A small HTTP/1.1 client: one keep-alive connection per thread, or a fresh one per request."""

    def __init__(self, port: int, timeout: float = 30.0, workers: Sequence[int] = ()) -> None:
        self.port = port
        self.timeout = timeout
        self.workers = list(workers)  # the server's worker PIDs, for probe()
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        content_type: str = "application/json",
        admin: bool = False,
        fresh: bool = False,
        retry: bool = True,
    ) -> tuple[int, bytes]:
        headers = {"Content-Type": content_type} if body is not None else {}
        if admin:
            headers["Authorization"] = f"Bearer {TOKEN}"
        if fresh:
            # A new connection per request: the kernel hands it to either worker.
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                conn.request(method, path, body, {**headers, "Connection": "close"})
                resp = conn.getresponse()
                return resp.status, resp.read()
            finally:
                conn.close()
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.request(method, path, body, headers)
                resp = conn.getresponse()
                return resp.status, resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # An idle keep-alive connection closed by the server: open a new one once.
                self.close()
                if attempt or not retry:
                    raise
        raise AssertionError("unreachable")

    def probe(self, method: str, path: str) -> tuple[int, bytes, int | None]:
        """A request on a fresh connection (the kernel hands it to either worker), and the PID that answered.

        The server's end of the connection is found in /proc/net/tcp by the
        two ports, and its inode among the workers' open files; the
        connection stays open until then (no ``Connection: close``).
        """
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            body = resp.read()
            assert conn.sock is not None
            return resp.status, body, answering_worker(self.port, conn.sock.getsockname()[1], self.workers)
        finally:
            conn.close()

    def related(self, article_id: str, *, fresh: bool = False) -> list[str] | None:
        """The ids of an article's list (limit 10); None when the article is unknown (404)."""
        status, body = self.request("GET", related_path(article_id), fresh=fresh)
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError(f"GET related of {article_id!r}: {status} {body[:200]!r}")
        return [item["id"] for item in json.loads(body)["items"]]

    def put(self, record: dict[str, Any], *, retry: bool = True) -> tuple[int, dict[str, Any]]:
        body = json.dumps(record).encode()
        status, body = self.request("PUT", article_path(record["id"]), body, admin=True, retry=retry)
        return status, (json.loads(body) if body else {})

    def model(self, *, fresh: bool = True) -> dict[str, Any]:
        status, body = self.request("GET", "/v1/model", fresh=fresh)
        if status != 200:
            raise RuntimeError(f"GET /v1/model: {status} {body[:200]!r}")
        return json.loads(body)  # type: ignore[no-any-return]


def _server_socket_inode(server_port: int, client_port: int) -> int | None:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
                if int(local, 16) == server_port and int(remote, 16) == client_port and fields[9] != "0":
                    return int(fields[9])
    return None


def answering_worker(server_port: int, client_port: int, workers: Sequence[int]) -> int | None:
    """The PID among ``workers`` holding the server's end of the connection from ``client_port``."""
    inode = _server_socket_inode(server_port, client_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in workers:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
    return None


def on_every_worker(
    probe: Callable[[], tuple[bool, int | None, int]],
    workers: Sequence[int],
    since: float,
    keys: int = 1,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Probe until every worker has answered every key with the probe holding; seconds from ``since``.

    ``probe`` makes one request and says whether it holds, which worker
    answered and which of ``keys`` things it asked. A (worker, key)'s time is
    that of its first answer that holds (reset should it answer otherwise
    later: a regression, counted); the result is the latest of them. Fresh
    connections go to either worker as the kernel decides, so the number of
    probes each worker got is reported too.
    """
    first: dict[tuple[int, int], float | None] = {(w, k): None for w in workers for k in range(keys)}
    probes = dict.fromkeys(workers, 0)
    unknown = regressions = 0
    while time.perf_counter() - since < timeout:
        ok, pid, key = probe()
        now = time.perf_counter()
        if pid not in probes:
            unknown += 1
            continue
        probes[pid] += 1
        if ok and first[pid, key] is None:
            first[pid, key] = now
        elif not ok and first[pid, key] is not None:
            first[pid, key] = None
            regressions += 1
        if all(t is not None for t in first.values()):
            break
    done = [t for t in first.values() if t is not None]
    return {
        "seconds": max(done) - since if len(done) == len(first) else None,
        "probes": sorted(probes.values()),
        "unidentified": unknown,
        "regressions": regressions,
    }


def article_path(article_id: str) -> str:
    import urllib.parse

    return "/v1/articles/" + urllib.parse.quote(article_id, safe="")


def related_path(article_id: str) -> str:
    return article_path(article_id) + f"/related?limit={K}"


def model_on_every_worker(
    client: Http, holds: Callable[[dict[str, Any]], bool], timeout: float = 60.0, since: float | None = None
) -> float | None:
    """Seconds from ``since`` (default now) until every worker's ``GET /v1/model`` satisfies ``holds``."""

    def probe() -> tuple[bool, int | None, int]:
        status, body, pid = client.probe("GET", "/v1/model")
        return status == 200 and holds(json.loads(body)), pid, 0

    start = time.perf_counter() if since is None else since
    return on_every_worker(probe, client.workers, start, timeout=timeout)["seconds"]  # type: ignore[no-any-return]


def serve(models_dir: Path, log_dir: Path, extra: dict[str, str] | None = None) -> Server:
    server = start_server(models_dir, 2, log_dir, {"RECOMMENDER_ADMIN_TOKEN": TOKEN, **(extra or {})})
    server.wait_ready()
    return server


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


# Models directories and commands ----------------------------------------------


def recommender(*args: str, check: bool = True, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMMENDER_")}
    proc = subprocess.run(
        [sys.executable, "-m", "recommender", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"recommender {args[0]} failed ({proc.returncode}): {proc.stderr[-1500:]}")
    return proc


def train(corpus: Path, models_dir: Path) -> float:
    """``recommender train`` with the default settings; its wall time."""
    t = time.perf_counter()
    recommender("train", "--corpus", str(corpus), "--models-dir", str(models_dir), "--quiet")
    return time.perf_counter() - t


def clone_models(source: Path, target: Path) -> Path:
    """A models dir sharing ``source``'s bundle files (hard links: bundles are never written in place).

    The change log and any other loose file is left out, so the clone starts
    with no logged change.
    """
    target.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.is_symlink():
            os.symlink(os.readlink(entry), target / entry.name)
        elif entry.is_dir() and (entry / "manifest.json").is_file():
            shutil.copytree(entry, target / entry.name, copy_function=os.link)
    return target


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for r in records:
            handle.write(json.dumps(r) + "\n")
    return path


def unlabeled(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "category"}


def in_process_lists(models_dir: Path, ids: Iterable[str], *, scores: bool = False) -> dict[str, Any]:
    from recommender import Recommender

    rec = Recommender.load(models_dir)
    out: dict[str, Any] = {}
    for i in ids:
        items = rec.related(i, K).items
        out[i] = [(it.id, it.score) for it in items] if scores else [it.id for it in items]
    return out


def fetch_all(
    client: Http, ids: Sequence[str], version: str, *, scores: bool = False, threads: int = 4, timeout: float = 60.0
) -> tuple[dict[str, Any], int]:
    """Every id's served list, each answered by a worker serving ``version``; and how many answers were not.

    Keep-alive connections from a thread pool. An answer of another version
    (a worker still behind: the 10 agreeing fresh answers before the fetch
    may all have come from the other worker) is asked again until ``timeout``.
    """

    def one(article_id: str) -> tuple[str, str, Any]:
        status, body = client.request("GET", related_path(article_id))
        if status != 200:
            raise RuntimeError(f"GET related of {article_id!r}: {status}")
        answer = json.loads(body)
        items = answer["items"]
        got = [(i["id"], i["score"]) for i in items] if scores else [i["id"] for i in items]
        return article_id, answer["model_version"], got

    lists: dict[str, Any] = {}
    behind = 0
    todo = list(ids)
    deadline = time.perf_counter() + timeout
    with ThreadPoolExecutor(threads) as pool:
        while todo:
            again = []
            for article_id, served, got in pool.map(one, todo, chunksize=64):
                if served == version:
                    lists[article_id] = got
                else:
                    again.append(article_id)
            behind += len(again)
            todo = again
            if todo and time.perf_counter() > deadline:
                raise RuntimeError(f"{len(todo)} lists still not served at version {version} after {timeout} s")
            if todo:
                time.sleep(0.1)
    return lists, behind


def synced(seq: int) -> Callable[[dict[str, Any]], bool]:
    return lambda model: int(model["log_seq"]) >= seq


# 1 + 2. Quality and freshness -------------------------------------------------------


def upsert_freshness(client: Http, x: str, since: float) -> dict[str, Any]:
    """Seconds until every worker serves x's own list; then x in an article's list of it, on every worker.

    A worker applies a change in one step on its event loop (x's own list and
    the lists x enters together), so x's own list answered by a worker times
    the whole change there; the reverse list is then confirmed on every worker.
    """

    def own() -> tuple[bool, int | None, int]:
        status, _, pid = client.probe("GET", related_path(x))
        return status == 200, pid, 0

    out = {"id": x, **on_every_worker(own, client.workers, since)}
    out["reverse_checked"] = False
    if out["seconds"] is not None:
        for j in client.related(x) or []:
            if x in (client.related(j) or []):

                def theirs(j: str = j) -> tuple[bool, int | None, int]:
                    status, body, pid = client.probe("GET", related_path(j))
                    return status == 200 and x in {i["id"] for i in json.loads(body)["items"]}, pid, 0

                confirmed = on_every_worker(theirs, client.workers, time.perf_counter())
                out["reverse_checked"] = confirmed["seconds"] is not None and not confirmed["regressions"]
                break
    return out


def delete_freshness(client: Http, x: str) -> dict[str, Any]:
    """Seconds until every worker answers 404 for x and leaves x out of the lists (up to 3) that held it."""
    own = client.related(x) or []
    holders = [j for j in own if x in (client.related(j) or [])][:3]
    status, body = client.request("DELETE", article_path(x), admin=True)
    since = time.perf_counter()
    if status != 204:
        raise RuntimeError(f"DELETE {x!r}: {status} {body[:200]!r}")
    paths = [article_path(x)] + [related_path(j) for j in holders]
    turn = [0]

    def gone() -> tuple[bool, int | None, int]:
        # One request per probe, in turn over the article and its holders' lists.
        key = turn[0] % len(paths)
        turn[0] += 1
        status, body, pid = client.probe("GET", paths[key])
        if key == 0:
            return status == 404, pid, key
        return status == 200 and x not in {i["id"] for i in json.loads(body)["items"]}, pid, key

    found = on_every_worker(gone, client.workers, since, keys=len(paths))
    return {"id": x, **found, "lists_checked": len(holders)}


def quality(mode: str, work: Path, records: list[dict[str, Any]], name: str) -> tuple[dict[str, Any], Path]:
    """Suites 1 and 2; returns the figures and the pristine 90 % models dir (for the later phases)."""
    plan = PLAN[mode]
    labels = {r["id"]: r.get("category") for r in records}
    clean = [unlabeled(r) for r in records]
    held_rows, kept_rows = split_rows(len(clean))
    held = [clean[i] for i in held_rows]
    base_corpus = write_jsonl(work / "base.jsonl", (clean[i] for i in kept_rows))
    all_corpus = write_jsonl(work / "all.jsonl", clean)
    pristine, retrain_dir = work / "base-pristine", work / "retrain"
    log(f"live: training on {len(kept_rows):,} of {len(clean):,} {name} articles, and on all of them")
    base_seconds = train(base_corpus, pristine)
    retrain_seconds = train(all_corpus, retrain_dir)
    models = clone_models(pristine, work / "quality")
    server = serve(models, work / "logs")
    client = Http(server.port, workers=server.workers())
    put_seconds: list[float] = []
    fresh: list[dict[str, Any]] = []
    step = max(1, len(held) // plan["fresh_samples"])
    statuses: dict[int, int] = {}
    try:
        last_seq, last_version = 0, ""
        for n, record in enumerate(held):
            t = time.perf_counter()
            status, answer = client.put(record)
            done = time.perf_counter()
            put_seconds.append(done - t)
            statuses[status] = statuses.get(status, 0) + 1
            if status not in (200, 201):
                raise RuntimeError(f"PUT {record['id']!r}: {status} {answer}")
            last_seq, last_version = answer["seq"], answer["model_version"]
            if n % step == 0 and len(fresh) < plan["fresh_samples"]:
                fresh.append(upsert_freshness(client, record["id"], done))
        log(f"live: {len(held):,} PUTs done (p50 {statistics.median(put_seconds) * 1e3:.1f} ms)")
        synced_after = model_on_every_worker(client, synced(last_seq))
        ids = [r["id"] for r in clean]
        t = time.perf_counter()
        live, behind = fetch_all(client, ids, last_version)
        fetch_seconds = time.perf_counter() - t
        versions = {client.model()["version"] for _ in range(6)}
        retrain = in_process_lists(retrain_dir, ids)
        new = {r["id"] for r in held}
        rng = random.Random(SEED + 1)
        victims = rng.sample(sorted(new), plan["delete_samples"] // 2)
        victims += rng.sample(sorted(set(ids) - new), plan["delete_samples"] - len(victims))
        deletes = [delete_freshness(client, x) for x in victims]
    finally:
        client.close()
        server.stop()
    reverse = reverse_presence(live, retrain, new)
    old_ids = [i for i in ids if i not in new]
    fresh_times = [f["seconds"] for f in fresh if f["seconds"] is not None]
    delete_times = [d["seconds"] for d in deletes if d["seconds"] is not None]
    result = {
        "corpus": name,
        "articles": len(clean),
        "held_out": len(held),
        "train_seconds_90": round(base_seconds, 1),
        "train_seconds_100": round(retrain_seconds, 1),
        "put_statuses": statuses,
        "put_ms": _ms(percentiles(put_seconds)),
        "synced_seconds_after_last_put": synced_after,
        "served_versions": sorted(versions),
        "fetch": {"requests": len(ids), "seconds": round(fetch_seconds, 1), "threads": 4, "asked_again": behind},
        "recall_at_10": _round(mean_recall(live, retrain)),
        "recall_at_10_new": _round(mean_recall(live, {i: retrain[i] for i in new})),
        "recall_at_10_old": _round(mean_recall(live, {i: retrain[i] for i in old_ids})),
        "p_at_10_live": _round(precision_by_label(live, labels)),
        "p_at_10_retrain": _round(precision_by_label(retrain, labels)),
        "reverse": {k: _round(v) for k, v in reverse.items()},
        "freshness_upsert": {
            **_seconds(percentiles(fresh_times)),
            "samples": len(fresh),
            "timed_out": len(fresh) - len(fresh_times),
            "with_reverse_check": sum(f["reverse_checked"] for f in fresh),
            **_probe_counts(fresh),
        },
        "freshness_delete": {
            **_seconds(percentiles(delete_times)),
            "samples": len(deletes),
            "timed_out": len(deletes) - len(delete_times),
            "lists_checked": sum(d["lists_checked"] for d in deletes),
            **_probe_counts(deletes),
        },
    }
    p_live, p_re = result["p_at_10_live"], result["p_at_10_retrain"]
    result["p_at_10_gap"] = _round(abs(p_live - p_re)) if p_live is not None and p_re is not None else None
    log(
        f"live quality: recall@10 {result['recall_at_10']}, P@10 {p_live} vs {p_re}, reverse {reverse['own_share']}; "
        f"fresh max {result['freshness_upsert']['max']} s, delete max {result['freshness_delete']['max']} s"
    )
    return result, pristine


def _probe_counts(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """How the fresh connections of the freshness samples fell on the workers."""
    return {
        "probes_median": statistics.median(sum(x["probes"]) for x in samples) if samples else None,
        "fewest_probes_of_a_worker": min((min(x["probes"]) for x in samples), default=None),
        "unidentified": sum(x["unidentified"] for x in samples),
        "regressions": sum(x["regressions"] for x in samples),
    }


def _round(value: Any, digits: int = 4) -> Any:
    return round(value, digits) if isinstance(value, float) else value


def _ms(p: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v * 1e3, 2) if k != "count" and v is not None else v) for k, v in p.items()}


def _seconds(p: dict[str, Any]) -> dict[str, Any]:
    return {k: (round(v, 3) if k != "count" and v is not None else v) for k, v in p.items()}


# 3. Speed ------------------------------------------------------------------------


class Writer(threading.Thread):
    """PUTs ``records`` one after another at ``rate`` per second (keep-alive) until stopped."""

    def __init__(self, port: int, records: Sequence[dict[str, Any]], rate: float = WRITER_RATE) -> None:
        super().__init__(daemon=True)
        self.client = Http(port, timeout=30)
        self.records = records
        self.rate = rate
        self.halt = threading.Event()
        self.statuses: dict[int, int] = {}
        self.failures: list[str] = []
        self.seconds: list[float] = []

    def run(self) -> None:
        start = time.perf_counter()
        for n, record in enumerate(self.records):
            wait = start + n / self.rate - time.perf_counter()
            if (wait > 0 and self.halt.wait(wait)) or self.halt.is_set():
                break
            t = time.perf_counter()
            try:
                status, answer = self.client.put(record)
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"{record['id']}: {type(exc).__name__}: {exc}")
                continue
            self.seconds.append(time.perf_counter() - t)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status not in (200, 201):
                self.failures.append(f"{record['id']}: {status} {answer}")
        self.client.close()

    def stop(self) -> dict[str, Any]:
        self.halt.set()
        self.join()
        return {
            "writes": sum(self.statuses.values()) + len(self.failures),
            "statuses": self.statuses,
            "errors": len(self.failures),
            "first_errors": self.failures[:5],
            "put_ms": _ms(percentiles(self.seconds)),
        }


def renamed(records: Iterable[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """Corpus articles under new ids (``prefix-<id>``), labels stripped: held-out-like articles."""
    return [{**unlabeled(r), "id": f"{prefix}-{r['id']}"} for r in records]


def bundle_ids(models_dir: Path, version: str = "current") -> list[str]:
    return (models_dir / version / "ids.txt").read_text(encoding="utf-8").splitlines()


def wrk_script(work: Path, ids: Sequence[str], name: str) -> Path:
    path = work / f"{name}.lua"
    path.write_text(lua_script("related", list(ids), ("", "")), encoding="utf-8")
    return path


def speed(mode: str, work: Path, source: Path, records: list[dict[str, Any]], name: str) -> dict[str, Any]:
    plan = PLAN[mode]
    models = clone_models(source, work / "speed")
    ids = bundle_ids(models)
    rng = random.Random(SEED + 2)
    wrk_writes = int(WRITER_RATE * (plan["wrk_seconds"] + 2) * plan["wrk_rounds"])
    need = plan["single_puts"] + plan["batch"] * plan["batches"] + 2 * wrk_writes
    pool = renamed(rng.sample(records, need), "live")
    singles, pool = pool[: plan["single_puts"]], pool[plan["single_puts"] :]
    batches = [pool[i * plan["batch"] : (i + 1) * plan["batch"]] for i in range(plan["batches"])]
    writes = pool[plan["batch"] * plan["batches"] :]
    writes, writes_cache_off = writes[:wrk_writes], writes[wrk_writes:]
    lookups = rng.sample(ids, len(singles))
    server = serve(models, work / "logs")
    client = Http(server.port, workers=server.workers())
    out: dict[str, Any] = {"corpus": name, "articles": len(ids)}
    try:
        put_s: list[float] = []
        get_s: list[float] = []
        statuses: dict[int, int] = {}
        for record, other in zip(singles, lookups, strict=True):
            t = time.perf_counter()
            status, answer = client.put(record)
            put_s.append(time.perf_counter() - t)
            statuses[status] = statuses.get(status, 0) + 1
            if status not in (200, 201):
                raise RuntimeError(f"PUT {record['id']!r}: {status} {answer}")
            t = time.perf_counter()
            client.related(other)
            get_s.append(time.perf_counter() - t)
        out["single_put_ms"] = _ms(percentiles(put_s))
        out["single_put_statuses"] = statuses
        out["get_related_ms"] = _ms(percentiles(get_s))  # the floor: a read on the same connection, in turn
        log(f"live speed: PUT p50 {out['single_put_ms']['p50']} ms p99 {out['single_put_ms']['p99']} ms")
        runs = []
        for batch in batches:
            body = "".join(json.dumps(r) + "\n" for r in batch).encode()
            t = time.perf_counter()
            status, raw = client.request(
                "POST", "/v1/admin/articles", body, content_type="application/x-ndjson", admin=True
            )
            seconds = time.perf_counter() - t
            if status not in (200, 201):
                raise RuntimeError(f"POST /v1/admin/articles: {status} {raw[:300]!r}")
            answer = json.loads(raw)
            everywhere = model_on_every_worker(client, synced(answer["last_seq"]), timeout=120, since=t)
            runs.append(
                {
                    "articles": len(batch),
                    "bytes": len(body),
                    "seconds": round(seconds, 3),
                    "articles_per_second": round(len(batch) / seconds, 1),
                    "served_by_both_workers_seconds": _round(everywhere, 3),
                    "answer": answer,
                }
            )
        out["batches"] = runs
        out["batch_articles_per_second"] = statistics.median(r["articles_per_second"] for r in runs)
        log(f"live speed: batch of {plan['batch']}: {out['batch_articles_per_second']} articles/s")
        out["wrk"] = _wrk_with_writer(mode, work, server, ids, writes)
    finally:
        client.close()
        server.stop()
    if wrk_path() is not None:
        # Every write changes the model version, which keys the response cache: the same runs on a
        # server without the cache tell that cost from the cost of applying the writes.
        models = clone_models(source, work / "speed-cache-off")
        server = serve(models, work / "logs", {"RECOMMENDER_RESPONSE_CACHE_SIZE": "0"})
        try:
            out["wrk_cache_off"] = _wrk_with_writer(mode, work, server, ids, writes_cache_off)
        finally:
            server.stop()
    return out


def _wrk_with_writer(
    mode: str, work: Path, server: Server, ids: Sequence[str], writes: list[dict[str, Any]]
) -> dict[str, Any]:
    plan = PLAN[mode]
    if wrk_path() is None:
        return {"skipped": "wrk is not installed (benchmarks/setup.sh installs it)"}
    script = wrk_script(work, random.Random(SEED + 3).sample(list(ids), min(200, len(ids))), "speed-related")
    seconds = plan["wrk_seconds"]
    run_wrk(server.url(""), script, 32, 2)  # warm-up
    quiet, busy, writers = [], [], []
    per_round = len(writes) // plan["wrk_rounds"]
    for n in range(plan["wrk_rounds"]):
        quiet.append(run_wrk(server.url(""), script, 32, seconds))
        writer = Writer(server.port, writes[n * per_round : (n + 1) * per_round])
        writer.start()
        busy.append(run_wrk(server.url(""), script, 32, seconds))
        writers.append(writer.stop())
        log(f"live wrk round {n + 1}: {quiet[-1]['rps']:.0f} req/s quiet, {busy[-1]['rps']:.0f} with 10 PUT/s")
    q = statistics.median(r["rps"] for r in quiet)
    b = statistics.median(r["rps"] for r in busy)
    log(f"live wrk: ratio of the medians {b / q:.3f}")
    return {
        "seconds_per_run": seconds,
        "connections": 32,
        "quiet": [_wrk_row(r) for r in quiet],
        "with_writer": [_wrk_row(r) for r in busy],
        "writers": writers,
        "rps_quiet_median": q,
        "rps_with_writer_median": b,
        "ratio": round(b / q, 3) if q else None,
    }


def _wrk_row(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("requests", "rps", "p50_us", "p99_us", "non_2xx_or_errors")
    return {k: r[k] for k in keys}


# 4. No loss, replay -----------------------------------------------------------------


def _metrics_dirs(server: Server) -> set[str]:
    """The PROMETHEUS_MULTIPROC_DIR of the server's processes (left behind by a SIGKILL)."""
    from .bench_training import process_tree

    found = set()
    for pid in process_tree(server.pid):
        with contextlib.suppress(OSError):
            for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                if item.startswith(b"PROMETHEUS_MULTIPROC_DIR="):
                    found.add(item.split(b"=", 1)[1].decode())
    return found


def _kill_server(server: Server) -> None:
    left = _metrics_dirs(server)
    kill_group(server.pid)
    server.process.wait(timeout=30)
    for folder in left:
        shutil.rmtree(folder, ignore_errors=True)


def check_present(client: Http, expected: dict[str, str]) -> dict[str, int]:
    """How many of ``expected`` (id -> title) are served with their title, served otherwise, or absent."""
    counts = {"present": 0, "absent": 0, "wrong": 0}
    for article_id, title in expected.items():
        status, body = client.request("GET", article_path(article_id))
        if status == 404:
            counts["absent"] += 1
        elif status == 200 and json.loads(body).get("title") == title and client.related(article_id) is not None:
            counts["present"] += 1
        else:
            counts["wrong"] += 1
    return counts


def kill_writes(mode: str, work: Path, pristine: Path, texts: list[str]) -> tuple[dict[str, Any], Path, dict[str, str]]:
    """kill -9 of the server's process group during two streams of PUTs; what survived the restart."""
    models = clone_models(pristine, work / "kill")
    server = serve(models, work / "logs")
    sent: dict[str, str] = {}
    acked: dict[str, str] = {}
    refused: dict[str, int] = {}
    lock = threading.Lock()

    def stream(thread: int) -> None:
        client = Http(server.port, timeout=10)
        for n in range(10**6):
            article_id, title = f"kill-{thread}-{n}", f"kill test {thread} {n}"
            record = {"id": article_id, "title": title, "body": texts[(n * 2 + thread) % len(texts)]}
            with lock:
                sent[article_id] = title
            try:
                status, _ = client.put(record, retry=False)
            except (OSError, http.client.HTTPException):
                return  # the server is gone
            with lock:
                if status in (200, 201):
                    acked[article_id] = title
                else:
                    refused[article_id] = status

    threads = [threading.Thread(target=stream, args=(t,), daemon=True) for t in range(2)]
    for t in threads:
        t.start()
    time.sleep(PLAN[mode]["kill_after"])
    _kill_server(server)
    for t in threads:
        t.join(timeout=30)
    unacked = {i: title for i, title in sent.items() if i not in acked and i not in refused}
    log(f"live kill: {len(acked)} writes acknowledged, {len(unacked)} in flight at the kill; restarting")
    server = serve(models, work / "logs")
    client = Http(server.port, workers=server.workers())
    try:
        after = {"acknowledged": check_present(client, acked), "in_flight": check_present(client, unacked)}
    finally:
        client.close()
        server.stop()
    result = {
        "streams": 2,
        "killed_after_seconds": PLAN[mode]["kill_after"],
        "sent": len(sent),
        "acknowledged": len(acked),
        "refused": refused,
        "in_flight": len(unacked),
        "after_restart": after,
        "acknowledged_missing": after["acknowledged"]["absent"] + after["acknowledged"]["wrong"],
        "half_there": after["acknowledged"]["wrong"] + after["in_flight"]["wrong"],
    }
    return result, models, acked


def copy_models(source: Path, target: Path) -> Path:
    """A models dir with the bundles hard-linked and the change log (and any other loose file) copied."""
    clone_models(source, target)
    for entry in source.iterdir():
        if entry.is_file() and not entry.is_symlink() and entry.name != "compact.lock":
            shutil.copy2(entry, target / entry.name)
    return target


def kill_compact(work: Path, models: Path, acked: dict[str, str]) -> dict[str, Any]:
    """kill -9 of ``recommender compact`` half-way through; the writes after a restart; a second compaction."""
    from recommender.bundle import current_version

    trial = copy_models(models, work / "kill-compact-trial")
    t = time.perf_counter()
    recommender("compact", "--models-dir", str(trial), "--quiet")
    usual = time.perf_counter() - t
    shutil.rmtree(trial, ignore_errors=True)
    before = current_version(models)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMMENDER_")}
    command = [sys.executable, "-m", "recommender", "compact", "--models-dir", str(models), "--quiet"]
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    time.sleep(usual / 2)
    running = proc.poll() is None
    kill_group(proc.pid)
    proc.wait(timeout=30)
    after_kill = current_version(models)
    log(f"live: compact killed at {usual / 2:.1f} s (usual {usual:.1f} s; running: {running}); restarting the server")
    server = serve(models, work / "logs")
    client = Http(server.port, workers=server.workers())
    try:
        restarted = check_present(client, acked)
        second = recommender("compact", "--models-dir", str(models), "--quiet", check=False)
        new = current_version(models)
        switched = model_on_every_worker(client, lambda m: m["base_version"] == new)
        after_second = check_present(client, acked)
    finally:
        client.close()
        server.stop()
    return {
        "usual_compact_seconds": round(usual, 2),
        "killed_after_seconds": round(usual / 2, 2),
        "was_running_at_kill": running,
        "current_before": before,
        "current_after_kill": after_kill,
        "writes": len(acked),
        "after_restart": restarted,
        "second_compact_exit": second.returncode,
        "second_compact": (second.stdout.strip().splitlines() or [second.stderr.strip()[-300:]])[-1],
        "served_new_bundle_seconds": _round(switched, 3),
        "after_second_compact": after_second,
        "missing": len(acked) - min(restarted["present"], after_second["present"]),
    }


def replay(mode: str, work: Path, clean: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """Recommender.load with and without replaying a log of N upserts (new articles) on the rest of the corpus."""
    from recommender import Recommender

    plan = PLAN[mode]
    count = min(plan["replay_changes"], len(clean) - len(clean) // 4)  # 10,000 of 20 Newsgroups' 18,846
    order = list(range(len(clean)))
    random.Random(SEED).shuffle(order)
    logged = [clean[i] for i in order[:count]]
    chosen = set(order[:count])
    base = write_jsonl(work / "replay-base.jsonl", (r for i, r in enumerate(clean) if i not in chosen))
    models = work / "replay"
    train(base, models)
    upserts = write_jsonl(work / "replay-log.jsonl", logged)
    t = time.perf_counter()
    recommender("upsert", "--corpus", str(upserts), "--models-dir", str(models))
    logging_seconds = time.perf_counter() - t
    Recommender.load(models, replay=False)  # warm the page cache and the imports
    plain, full = [], []
    for _ in range(plan["replay_rounds"]):
        t = time.perf_counter()
        Recommender.load(models, replay=False)
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        rec = Recommender.load(models)
        full.append(time.perf_counter() - t)
        served = len(rec)
        del rec
    extra = statistics.median(full) - statistics.median(plain)
    log(f"live replay: {count} changes add {extra:.2f} s to a load ({extra / count * 1e3:.2f} ms each)")
    restart = _restart_with_checkpoint(models, count, plan["replay_rounds"], statistics.median(plain))
    return {
        "corpus": name,
        "bundle_articles": len(clean) - count,
        "logged_upserts": count,
        "served_after_replay": served,
        "upsert_command_seconds": round(logging_seconds, 2),
        "load_seconds_no_replay": [round(s, 3) for s in plain],
        "load_seconds_replay": [round(s, 3) for s in full],
        "replay_seconds": round(extra, 3),
        "replay_ms_per_change": round(extra / count * 1e3, 3),
        **restart,
    }


def _restart_with_checkpoint(models: Path, count: int, rounds: int, plain: float) -> dict[str, Any]:
    """The load of the same log as a restarted worker does it: the service's last checkpoint, then the rest.

    A worker saves a checkpoint every RECOMMENDER_CHECKPOINT_EVERY (1000) changes
    it applied; the worst case for a restart is a kill just before the next one:
    the checkpoint at ``count - 999`` and 999 changes after it. That checkpoint is
    made here as the service makes it (the changes up to it applied, captured,
    written).
    """
    from recommender import Recommender
    from recommender.changelog import ChangeLog
    from recommender.checkpoint import FOLDER, capture, write_checkpoint

    every = 1000
    at = max(1, count - (every - 1))
    rec = Recommender.load(models, replay=False)
    with ChangeLog(models) as changes:
        rec.log_id = changes.log_id()
        rec.apply(change for change in changes.since(0) if change.seq <= at)
    captured = capture(rec)
    assert captured is not None
    written = write_checkpoint(captured, models)
    del rec
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        loaded = Recommender.load(models)
        times.append(time.perf_counter() - t)
        assert loaded.log_seq >= count, (loaded.log_seq, count)
        del loaded
    extra = statistics.median(times) - plain
    log(f"live replay with the checkpoint at {at}: {count} changes add {extra:.2f} s to a load")
    size = sum(f.stat().st_size for f in (written or models / FOLDER).iterdir()) if written else None
    return {
        "checkpoint_at": at,
        "checkpoint_bytes": size,
        "load_seconds_checkpoint": [round(x, 3) for x in times],
        "restart_replay_seconds": round(extra, 3),
    }


# 5. Compaction under load -------------------------------------------------------------


def compare_lists(got: dict[str, Any], want: dict[str, Any], decimals: int | None = None) -> dict[str, Any]:
    """Lists of (id, score): ids in the same order and scores within SCORE_TOLERANCE.

    ``decimals``: ``got``'s scores were rounded to that many (the service's
    JSON has 6), so ``want``'s are rounded the same way before comparing.
    """
    from recommender.values import SCORE_TOLERANCE  # in here, as every recommender import of this module

    differ, worst = [], 0.0
    for article_id, expected in want.items():
        served = got.get(article_id)
        if served is None or [i for i, _ in served] != [i for i, _ in expected]:
            differ.append(article_id)
            continue
        for (_, a), (_, b) in zip(served, expected, strict=True):
            worst = max(worst, abs(a - (b if decimals is None else round(b, decimals))))
    return {
        "lists": len(want),
        "ids_differ": len(differ),
        "first_differing": differ[:5],
        "max_score_diff": worst,
        "equal": not differ and worst <= SCORE_TOLERANCE,
    }


def train_like(models: Path, version: str, scratch: Path) -> Path:
    """``recommender train`` on a bundle's own ``articles.jsonl``, in ``scratch``."""
    scratch.mkdir(parents=True)
    corpus = scratch / "articles.jsonl"
    shutil.copyfile(models / version / "articles.jsonl", corpus)
    train(corpus, scratch / "models")
    return scratch / "models"


def compaction_under_load(mode: str, work: Path, pristine: Path, held: list[dict[str, Any]]) -> dict[str, Any]:
    from recommender import Recommender
    from recommender.bundle import current_version

    plan = PLAN[mode]
    if wrk_path() is None:
        return {"skipped": "wrk is not installed (benchmarks/setup.sh installs it)"}
    models = clone_models(pristine, work / "load")
    count = min(plan["logged_before_compaction"], len(held) // 2)
    upserts = write_jsonl(work / "load-log.jsonl", held[:count])
    recommender("upsert", "--corpus", str(upserts), "--models-dir", str(models))
    ids = bundle_ids(models)
    script = wrk_script(work, random.Random(SEED + 4).sample(ids, min(200, len(ids))), "load-related")
    writes = [{**r, "id": f"load-{n}-{r['id']}"} for n in range(100) for r in held[count:]][:5000]
    server = serve(models, work / "logs")
    client = Http(server.port, workers=server.workers())
    chunks: list[dict[str, Any]] = []
    done = threading.Event()

    def load() -> None:
        while not done.is_set():
            chunks.append(run_wrk(server.url(""), script, 32, 4))

    compaction: dict[str, Any] = {}
    try:
        before = client.model()
        writer = Writer(server.port, writes)
        hammer = threading.Thread(target=load, daemon=True)
        started = time.perf_counter()
        hammer.start()
        writer.start()
        time.sleep(plan["load_seconds"] / 3)
        t = time.perf_counter()
        proc = recommender("compact", "--models-dir", str(models), "--quiet", check=False)
        compaction = {
            "started_after_seconds": round(t - started, 1),
            "seconds": round(time.perf_counter() - t, 1),
            "exit": proc.returncode,
            "summary": (proc.stdout.strip().splitlines() or [proc.stderr.strip()[-300:]])[-1],
        }
        first = current_version(models)
        time.sleep(max(plan["load_seconds"] / 3, plan["load_seconds"] - (time.perf_counter() - started)))
        switched = client.model()
        done.set()
        hammer.join()
        writes_report = writer.stop()
        total = time.perf_counter() - started
        log(f"live load: compaction {compaction}; wrk {len(chunks)} runs; writer {writes_report['errors']} errors")
        # Fold the writer's last changes in too (no load now), then every served list against a plain training.
        second = recommender("compact", "--models-dir", str(models), "--quiet")
        final = current_version(models)
        assert final is not None and first is not None
        if model_on_every_worker(client, lambda m: m["version"] == final) is None:
            raise RuntimeError(f"the server did not serve the compacted bundle {final} within 60 s")
        final_ids = bundle_ids(models, final)
        served, behind = fetch_all(client, final_ids, final, scores=True)
    finally:
        client.close()
        server.stop()
    expected = in_process_lists(train_like(models, final, work / "load-scratch-final"), final_ids, scores=True)
    served_vs_train = compare_lists(served, expected, decimals=6)
    # The bundle made under load, against a training on its own articles (in process, no replay).
    loaded = Recommender.load(models, first, replay=False)
    under_load = {i: [(it.id, it.score) for it in loaded.related(i, K).items] for i in bundle_ids(models, first)}
    del loaded
    scratch = train_like(models, first, work / "load-scratch-first")
    bundle_vs_train = compare_lists(under_load, in_process_lists(scratch, under_load, scores=True))
    requests = sum(c["requests"] for c in chunks)
    failed = sum(c["non_2xx_or_errors"] for c in chunks)
    log(f"live load: served lists vs train {served_vs_train}; compacted bundle vs train {bundle_vs_train}")
    return {
        "logged_before": count,
        "seconds": round(total, 1),
        "wrk": {
            "connections": 32,
            "runs": len(chunks),
            "requests": requests,
            "rps": round(requests / sum(c["duration_us"] / 1e6 for c in chunks), 1) if chunks else None,
            "failed": failed,
            "p99_us_worst_run": max((c["p99_us"] for c in chunks), default=None),
            "max_us": max((c["max_us"] for c in chunks), default=None),
        },
        "writer": writes_report,
        "compaction": compaction,
        "version_before": before["version"],
        "compacted_version": first,
        "served_after": {"version": switched["version"], "base_version": switched["base_version"]},
        "second_compaction": second.stdout.strip().splitlines()[-1] if second.stdout.strip() else "",
        "served_vs_train": {**served_vs_train, "asked_again": behind},
        "compacted_bundle_vs_train": bundle_vs_train,
        "failed_total": failed + writes_report["errors"] + (compaction.get("exit") != 0),
    }


# The suite ------------------------------------------------------------------------------


def run(
    mode: str,
    workdir: Path,
    quality_name: str,
    quality_corpus: Path | None,
    speed_name: str,
    speed_corpus: Path | None,
    speed_model: Callable[[], Path | None],
) -> dict[str, Any]:
    """Every figure of the live index; a phase that fails is named in ``errors`` and the others still run."""
    work = workdir / "live"
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"plan": PLAN[mode], "skipped": {}, "errors": {}, "seconds": {}}

    def phase(name: str, job: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        log(f"live: {name}")
        try:
            return job()
        except Exception as exc:  # one broken phase must not lose the others' figures
            import traceback

            out["errors"][name] = f"{type(exc).__name__}: {exc}"
            log(f"live {name} FAILED: {exc}\n{traceback.format_exc()}")
            return None
        finally:
            out["seconds"][name] = round(time.perf_counter() - t, 1)

    if quality_corpus is None:
        out["skipped"]["quality"] = f"no corpus for {quality_name}"
    else:
        records = read_records(quality_corpus)
        clean = [unlabeled(r) for r in records]
        held_rows, _ = split_rows(len(clean))
        held = [clean[i] for i in held_rows]
        got = phase("quality", lambda: quality(mode, work, records, quality_name))
        if got is not None:
            out["quality"], pristine = got
            killed = phase("kill_writes", lambda: kill_writes(mode, work, pristine, [r["body"] for r in held]))
            if killed is not None:
                out["kill_writes"], kill_models, acked = killed
                out["kill_compact"] = phase("kill_compact", lambda: kill_compact(work, kill_models, acked))
            out["compaction_under_load"] = phase(
                "compaction_under_load", lambda: compaction_under_load(mode, work, pristine, held)
            )
        out["replay"] = phase("replay", lambda: replay(mode, work, clean, quality_name))
        del records, clean, held
    if speed_corpus is None:
        out["skipped"]["speed"] = f"no corpus for {speed_name}"
    else:
        source = phase("speed_model", speed_model)
        if source is not None:
            records = read_records(speed_corpus)
            out["speed"] = phase("speed", lambda: speed(mode, work, source, records, speed_name))
            del records
    shutil.rmtree(work, ignore_errors=True)
    return out
