"""SIGKILL during training never damages the current model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recommender.bundle import current_version, list_versions
from recommender.recommend import Recommender

from .conftest import write_jsonl

WORDS = (
    "market energy league cup vote court film music phone chip rain storm bank tax school "
    "hospital rail airport museum novel galaxy vaccine climate river forest harvest"
).split()


def synthetic_corpus(path: Path, n: int) -> Path:
    import random

    rng = random.Random(7)
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "qu", "bri", "dan"]
    vocabulary = sorted({"".join(rng.choice(syllables) for _ in range(3)) for _ in range(3000)})
    records = []
    for i in range(n):
        topic = WORDS[i % len(WORDS)]
        body = " ".join(rng.choice(vocabulary) for _ in range(120))
        records.append({"id": f"a{i}", "title": f"{topic} news {i}", "body": f"{topic} {topic} {body}"})
    return write_jsonl(path, records)


def start_training(corpus: Path, models: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recommender",
            "train",
            "--corpus",
            str(corpus),
            "--models-dir",
            str(models),
            "--min-df",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("kill")
    corpus = synthetic_corpus(root / "big.jsonl", 12000)
    models = root / "models"
    proc = start_training(corpus, models)
    assert proc.wait(timeout=300) == 0, proc.stderr.read() if proc.stderr else ""
    return corpus, models, current_version(models) or ""


def _kill_when(proc: subprocess.Popen[bytes], ready, timeout: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "training ended before the kill point was reached"
        assert time.monotonic() < deadline, "kill point not reached in time"
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _assert_untouched(models: Path, version: str) -> None:
    assert current_version(models) == version
    assert list_versions(models) == [version]
    rec = Recommender.load(models)
    assert rec.version == version
    assert rec.related("a1", limit=3).items


@pytest.mark.slow
def test_kill_while_computing_neighbours(trained: tuple[Path, Path, str]) -> None:
    corpus, models, version = trained
    proc = start_training(corpus, models)
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    seen = bytearray()

    def in_neighbours() -> bool:
        chunk = proc.stderr.read() if proc.stderr else None
        if chunk:
            seen.extend(chunk)
        return b"neighbours:" in seen and b"article/s" in seen

    _kill_when(proc, in_neighbours)
    _assert_untouched(models, version)


@pytest.mark.slow
def test_kill_while_writing_the_bundle(trained: tuple[Path, Path, str]) -> None:
    corpus, models, version = trained
    proc = start_training(corpus, models)

    def writing() -> bool:
        return any(p.name.startswith(".tmp-") and any(p.iterdir()) for p in models.iterdir())

    _kill_when(proc, writing)
    _assert_untouched(models, version)
