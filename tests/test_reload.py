"""Reloads under concurrent load, against a real server process.

Eight threads query the server while the main thread swaps the current
bundle back and forth between two models (and once to a damaged one). Every
request must succeed, and every answer must come entirely from one model:
its version is one of the two, and its items are exactly that model's list.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest

from recommender.bundle import set_current
from recommender.recommend import Recommender
from recommender.train import TrainOptions, train

from .conftest import DEMO_CORPUS, write_jsonl
from .servers import Server, evil_articles, running_server

pytestmark = pytest.mark.slow

TOKEN = "reload-token"
THREADS = 8
SWAP_CYCLES = 10
MAX_REQUESTS_PER_THREAD = 4000  # a bound; the threads stop once the swaps are done
LIMIT = 5
DRAFTS = [
    ("Ferry fares", "Saltmere Lines raises island ferry fares because fuel costs more."),
    ("Battery start-up", "A sodium-ion battery start-up raises money for a pilot production line."),
]


@dataclass
class Models:
    folder: Path
    a: str
    b: str
    damaged: str
    ids: list[str]
    # version -> request key -> the JSON items that model must answer with
    expected: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)


def demo_records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DEMO_CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def expected_lists(rec: Recommender, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    lists = {f"id:{i}": rec.describe(rec.related(i, LIMIT).items) for i in ids}
    for n, (title, body) in enumerate(DRAFTS):
        lists[f"text:{n}"] = rec.describe(rec.related_to_text(title, body, LIMIT).items)
    return lists


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    root = tmp_path_factory.mktemp("reload")
    folder = root / "models"
    records = demo_records()
    a = train([write_jsonl(root / "a.jsonl", records)], folder, TrainOptions(n_jobs=1), keep=10).version
    # B: more articles and another title weight, so that every list differs from A's.
    b = train(
        [write_jsonl(root / "b.jsonl", [*records, *evil_articles()])],
        folder,
        TrainOptions(n_jobs=1, title_weight=1.0),
        keep=10,
    ).version
    damaged = train(
        [write_jsonl(root / "c.jsonl", records[:-1])], folder, TrainOptions(n_jobs=1, title_weight=3.0), keep=10
    ).version
    target = folder / damaged / "neighbours.npy"
    data = bytearray(target.read_bytes())
    data[-8:] = bytes(8)
    target.write_bytes(bytes(data))
    set_current(folder, a)

    ids = [r["id"] for r in records[::6]]
    m = Models(folder, a, b, damaged, ids)
    for version in (a, b):
        m.expected[version] = expected_lists(Recommender.load(folder, version), ids)
    # The test can only see a mixed answer if the two models answer differently.
    for key, items in m.expected[a].items():
        assert items != m.expected[b][key], key
    return m


@pytest.fixture
def server(models: Models) -> Any:
    set_current(models.folder, models.a)
    with running_server(models.folder, env={"RECOMMENDER_ADMIN_TOKEN": TOKEN}) as s:
        yield s


@dataclass
class Outcome:
    ok: int = 0
    by_version: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def worker(server: Server, models: Models, stop: threading.Event, outcome: Outcome, offset: int) -> None:
    keys = list(models.expected[models.a])
    conn = HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        for n in range(MAX_REQUESTS_PER_THREAD):
            if stop.is_set() and n >= 20:
                break
            key = keys[(n + offset) % len(keys)]
            if key.startswith("id:"):
                conn.request("GET", f"/v1/articles/{key[3:]}/related?limit={LIMIT}")
            else:
                title, body = DRAFTS[int(key[5:])]
                payload = json.dumps({"title": title, "body": body, "limit": LIMIT})
                conn.request("POST", "/v1/related", payload, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read()
            if resp.status != 200:
                outcome.problems.append(f"{key}: status {resp.status}: {raw[:200]!r}")
                continue
            answer = json.loads(raw)
            version = answer["model_version"]
            if version not in models.expected:
                outcome.problems.append(f"{key}: unknown model_version {version}")
            elif answer["items"] != models.expected[version][key]:
                outcome.problems.append(f"{key}: items are not model {version}'s list: {answer['items']}")
            else:
                outcome.ok += 1
                outcome.by_version[version] = outcome.by_version.get(version, 0) + 1
    except Exception as exc:  # a dropped connection is a lost request
        outcome.problems.append(f"request failed: {exc!r}")
    finally:
        conn.close()


def reload(server: Server) -> tuple[int, dict[str, Any]]:
    r = server.request("POST", "/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    return r.status, r.json()


def test_reload_under_load_loses_nothing_and_never_mixes(server: Server, models: Models) -> None:
    stop = threading.Event()
    outcomes = [Outcome() for _ in range(THREADS)]
    threads = [
        threading.Thread(target=worker, args=(server, models, stop, outcomes[i], i * 3), daemon=True)
        for i in range(THREADS)
    ]
    for t in threads:
        t.start()
    swaps: list[tuple[int, dict[str, Any]]] = []
    refused: list[tuple[int, dict[str, Any], str]] = []
    try:
        for cycle in range(SWAP_CYCLES):
            set_current(models.folder, models.b)
            swaps.append(reload(server))
            if cycle == SWAP_CYCLES // 2:
                # A damaged bundle made current is refused; B keeps serving.
                set_current(models.folder, models.damaged)
                status, body = reload(server)
                refused.append((status, body, server.get("/readyz").json()["model_version"]))
            set_current(models.folder, models.a)
            swaps.append(reload(server))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)

    assert [s for s, _ in swaps] == [200] * (2 * SWAP_CYCLES)
    assert [b["model_version"] for _, b in swaps] == [models.b, models.a] * SWAP_CYCLES
    assert len(refused) == 1
    status, body, serving = refused[0]
    assert status == 409
    assert body["detail"].startswith(f"bundle refused, still serving {models.b}: ")
    assert "neighbours.npy" in body["detail"]
    assert serving == models.b

    problems = [p for o in outcomes for p in o.problems]
    assert problems == []
    assert all(o.ok >= 20 for o in outcomes)
    total = {v: sum(o.by_version.get(v, 0) for o in outcomes) for v in (models.a, models.b)}
    print(f"\n{sum(o.ok for o in outcomes)} requests answered, by model: {total}")
    assert total[models.a] > 0 and total[models.b] > 0, total  # the load really overlapped the swaps
    assert server.get("/readyz").json()["model_version"] == models.a


def test_damaged_current_bundle_is_refused_while_the_old_one_serves(server: Server, models: Models) -> None:
    key = f"id:{models.ids[0]}"
    set_current(models.folder, models.damaged)
    status, body = reload(server)
    assert status == 409
    assert body["detail"].startswith(f"bundle refused, still serving {models.a}: ")
    r = server.get(f"/v1/articles/{models.ids[0]}/related?limit={LIMIT}")
    assert r.status == 200
    assert r.json()["model_version"] == models.a
    assert r.json()["items"] == models.expected[models.a][key]
    set_current(models.folder, models.b)
    status, body = reload(server)
    assert status == 200 and body == {"model_version": models.b, "previous": models.a}
    assert (
        server.get(f"/v1/articles/{models.ids[0]}/related?limit={LIMIT}").json()["items"]
        == (models.expected[models.b][key])
    )
