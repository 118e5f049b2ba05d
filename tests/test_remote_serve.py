"""End to end: two ``recommender serve --models-url file:///...`` replicas, each with its own cache folder,
answer identical lists and both follow a new ``recommender train --models-dir file:///...``."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recommender.remote import RemoteStore

from .conftest import TINY, write_jsonl
from .servers import ROOT, Server, start_server

pytestmark = pytest.mark.slow
WAIT = 30.0  # seconds: far above the 0.5 s watch interval, for a busy machine
IDS = [str(r["id"]) for r in TINY]


TINY_OPTIONS = ["--quiet", "--min-df", "1", "--max-df", "1.0", "--min-similarity", "0.01", "--k", "5", "--jobs", "1"]


def train_cli(corpus: Path, url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "recommender", "train", "--corpus", str(corpus), "--models-dir", url, *TINY_OPTIONS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    version = RemoteStore(url).current()
    assert version is not None and f"in {url}/{version}" in done.stdout
    return version


def start_replica(url: str, cache: Path, log_dir: Path, workers: int = 1) -> Server:
    """``recommender serve --models-url URL --cache-dir CACHE`` on a free port, ready."""
    source = ("--models-url", url, "--cache-dir", str(cache))
    return start_server(cache, workers=workers, log_dir=log_dir, source=source)


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[str, list[Server]]]:
    url = (tmp_path / "store").as_uri()
    train_cli(write_jsonl(tmp_path / "first.jsonl", TINY[:-1]), url)
    servers: list[Server] = []
    try:
        # b's two workers download into one cache folder at once: the first rename wins.
        for name, workers in (("a", 1), ("b", 2)):
            servers.append(start_replica(url, tmp_path / f"cache-{name}", tmp_path, workers))
        yield url, servers
    finally:
        for server in servers:
            server.stop()


def lists(server: Server) -> dict[str, object]:
    return {i: server.get(f"/v1/articles/{i}/related?limit=5").json() for i in IDS}


def served(server: Server) -> str:
    return str(server.get("/readyz").json().get("model_version", ""))


def follows(server: Server, version: str) -> bool:
    """Whether the server answers ``version`` 20 times in a row (any of its workers may answer) within WAIT."""
    deadline = time.monotonic() + WAIT
    streak = 0
    while streak < 20 and time.monotonic() < deadline:
        streak = streak + 1 if served(server) == version else 0
        time.sleep(0.02)
    return streak >= 20


def test_two_replicas_answer_the_same_lists_and_follow_a_new_training(
    replicas: tuple[str, list[Server]], tmp_path: Path
) -> None:
    url, (a, b) = replicas
    first = RemoteStore(url).current()
    assert served(a) == served(b) == first
    before = lists(a)
    assert before == lists(b)
    assert any(body.get("items") for body in before.values())  # type: ignore[union-attr]
    second = train_cli(write_jsonl(tmp_path / "second.jsonl", TINY), url)
    for server in (a, b):
        assert follows(server, second), server.log()
    assert lists(a) == lists(b) != before
    for cache in (tmp_path / "cache-a", tmp_path / "cache-b"):
        assert (cache / second / "manifest.json").is_file()
        assert [p.name for p in cache.iterdir() if p.name.startswith(".tmp-")] == []
