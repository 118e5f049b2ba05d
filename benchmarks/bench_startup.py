"""Suite 4: cold start to /readyz and memory per worker, against the bundled demo model.

Cold start: wall time from spawning ``recommender serve`` (1 worker) to the
first ``/readyz`` answering 200 (polled every 5 ms), for the large model and,
as the floor, for the 60-article demo model trained in the same run (the
cost of Python, the imports and the framework). The first start after
training may find the bundle in the page cache; repeated starts are reported
one by one and as their median.

Memory: read from ``/proc/PID/smaps_rollup`` after both servers have answered
related and free-text requests (so each worker has touched its arrays):

* RSS counts every resident page the process maps, shared or not: two
  workers mapping the same ``.npy`` files each count them in full;
* USS (Private_Clean + Private_Dirty) counts only the pages no other process
  maps: what the process alone costs;
* PSS splits each shared page between the processes that map it: the sum of
  PSS over processes is the machine's real memory. It is the honest measure
  for workers sharing memory-mapped arrays.

"Memory added by the second worker" is the sum of the workers' PSS with 2
workers minus the PSS of the single worker of a 1-worker server, as a share
of the latter.
"""

from __future__ import annotations

import json
import statistics
import sys
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .bench_http import Server, serving
from .bench_training import memory_of

REPEATS = {"full": 3, "quick": 1}


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def cold_starts(models_dir: Path, repeats: int, log_dir: Path) -> list[float]:
    """Seconds to /readyz == 200 of ``repeats`` fresh 1-worker servers."""
    out = []
    for _ in range(repeats):
        with serving(models_dir, 1, log_dir) as server:
            assert server.ready_seconds is not None
            out.append(round(server.ready_seconds, 3))
    return out


def _exercise(server: Server, ids: list[str], draft: tuple[str, str], requests: int = 240) -> None:
    """Related and free-text requests over 8 connections, so that every worker serves some."""
    body = json.dumps({"title": draft[0], "body": draft[1], "limit": 10}).encode()

    def one(n: int) -> None:
        if n % 4 == 3:
            req = urllib.request.Request(
                server.url("/v1/related"), data=body, headers={"Content-Type": "application/json"}
            )
        else:
            req = urllib.request.Request(
                server.url(f"/v1/articles/{urllib.parse.quote(ids[n % len(ids)], safe='')}/related?limit=10")
            )
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(requests)))


def worker_memory(models_dir: Path, workers: int, ids: list[str], draft: tuple[str, str], log_dir: Path) -> dict:
    with serving(models_dir, workers, log_dir) as server:
        _exercise(server, ids, draft)
        pids = server.workers()
        per = [{"pid": p, **memory_of(p)} for p in pids]
        leader = memory_of(server.pid) if workers > 1 else None
    return {"workers": per, "supervisor": leader}


def run(
    mode: str,
    models_dir: Path,
    demo_models_dir: Path,
    name: str,
    articles: int,
    ids: list[str],
    draft: tuple[str, str],
    workdir: Path,
) -> dict[str, Any]:
    repeats = REPEATS[mode]
    logs = workdir / "logs"
    log(f"startup: cold start of the {name} model ({articles:,} articles), {repeats} time(s)")
    starts = cold_starts(models_dir, repeats, logs)
    log(f"startup: {name} ready after {starts} s; now the demo model (floor)")
    floor = cold_starts(demo_models_dir, repeats, logs)
    log(f"startup: demo model ready after {floor} s")
    log("startup: memory with 1 and 2 workers")
    one = worker_memory(models_dir, 1, ids, draft, logs)
    two = worker_memory(models_dir, 2, ids, draft, logs)
    single = one["workers"][0]
    pair = two["workers"]
    result: dict[str, Any] = {
        "corpus": name,
        "articles": articles,
        "cold_start_seconds": starts,
        "cold_start_median": statistics.median(starts),
        "floor_cold_start_seconds": floor,
        "floor_cold_start_median": statistics.median(floor),
        "one_worker": one,
        "two_workers": two,
    }
    result["cold_start_vs_floor"] = round(result["cold_start_median"] / result["floor_cold_start_median"], 2)
    if len(pair) >= 2 and single.get("pss"):
        added = sum(w["pss"] for w in pair) - single["pss"]
        first, second = pair[0], pair[1]
        result["memory"] = {
            "second_worker_added_pss_share": round(added / single["pss"], 3),
            "second_worker_uss_vs_first_rss": round(second["uss"] / first["rss"], 3) if first["rss"] else None,
            "second_worker_pss_vs_single_pss": round(second["pss"] / single["pss"], 3),
        }
    log(f"startup: {json.dumps(result.get('memory'))}")
    return result
