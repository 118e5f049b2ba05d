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


def _train_command(corpus: Path, models: Path, *extra: str, quiet: bool = True) -> list[str]:
    command = [sys.executable, "-m", "recommender", "train", "--corpus", str(corpus), "--models-dir", str(models)]
    return [*command, "--min-df", "1", *(["--quiet"] if quiet else []), *extra]


def start_training(corpus: Path, models: Path) -> subprocess.Popen[bytes]:
    # With its progress bar: a test waits for the neighbours step in it.
    return subprocess.Popen(
        _train_command(corpus, models, quiet=False), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
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


# --- nothing outlives a killed training (issue 9, item 6) ------------------------------------


def _proc_stat(pid: int) -> tuple[str, int, str] | None:
    """(state, parent pid, start time) of a process from /proc/<pid>/stat, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after the last ')'.
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), fields[19]


def _children(pid: int) -> dict[int, str]:
    """Child pids of ``pid`` and their start times, found by scanning /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None and stat[1] == pid:
                found[int(entry)] = stat[2]
    return found


def _running(pid: int, started: str) -> bool:
    """True while that very process (same start time, so not a reused pid) runs or sleeps; a zombie is dead."""
    stat = _proc_stat(pid)
    return stat is not None and stat[2] == started and stat[0] not in ("Z", "X")


def _wait_until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@pytest.fixture(scope="module")
def forking_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from recommender.counting import PARALLEL_MIN_DOCS

    # Large enough for the forked counting workers, small enough to reach them in a second or two.
    return synthetic_corpus(tmp_path_factory.mktemp("fork") / "corpus.jsonl", PARALLEL_MIN_DOCS + 2000)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds child processes through /proc")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="counting forks workers only with two cores or more")
def test_counting_workers_die_with_a_killed_training(forking_corpus: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        _train_command(forking_corpus, tmp_path / "models", "--jobs", "2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: dict[int, str] = {}
    try:

        def two_workers() -> bool:
            assert proc.poll() is None, "training ended before its counting workers were seen"
            workers.update(_children(proc.pid))
            return len(workers) >= 2

        _wait_until(two_workers, 120, "the counting workers never started")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        _wait_until(
            lambda: not any(_running(pid, started) for pid, started in workers.items()),
            30,
            f"counting workers outlived the killed training: {sorted(workers)}",
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        for pid, started in workers.items():
            if _running(pid, started):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_the_next_training_removes_what_a_killed_one_left(forking_corpus: Path, tmp_path: Path) -> None:
    from .conftest import TINY

    models = tmp_path / "models"
    proc = subprocess.Popen(
        _train_command(forking_corpus, models), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:

        def writing() -> bool:
            return models.is_dir() and any(p.name.startswith(".tmp-") and any(p.iterdir()) for p in models.iterdir())

        _kill_when(proc, writing)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    left = [p.name for p in models.iterdir() if p.name.startswith(".tmp-")]
    assert left, "the killed training left no temporary folder to clean"
    assert all(f"-{proc.pid}-" in name for name in left), left
    # A link of an interrupted switch of `current`, owned by the same dead process.
    os.symlink("nowhere", models / f".current-{proc.pid}")

    tiny = write_jsonl(tmp_path / "tiny.jsonl", TINY)
    done = subprocess.run(_train_command(tiny, models), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in models.iterdir() if p.name.startswith(".")) == []
    assert list_versions(models) == [current_version(models)]


def test_remove_stale_temporaries_keeps_what_a_live_process_owns(tmp_path: Path) -> None:
    from recommender.bundle import remove_stale_temporaries

    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait(timeout=30)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        if Path("/proc/self/stat").is_file():
            _wait_until(lambda: (_proc_stat(zombie.pid) or ("Z",))[0] == "Z", 30, "the child never exited")
        else:  # pragma: no cover - without /proc a zombie counts as alive
            zombie.wait(timeout=30)
        version = "20261202T101010123Z-0c2a9d01"
        names = {
            "dead": f".tmp-{version}-{finished.pid}-k2m9q_x7",
            "zombie": f".tmp-{version}-{zombie.pid}-a1b2c3d4",
            "mine": f".tmp-{version}-{os.getpid()}-zz00yy11",
            "old": f".tmp-{version}-abcdefgh",
        }
        for name in names.values():
            (tmp_path / name).mkdir()
            (tmp_path / name / "neighbours.npy").write_bytes(b"x" * 100)
        (tmp_path / version).mkdir()
        os.symlink(version, tmp_path / f".current-{finished.pid}")
        os.symlink(version, tmp_path / f".current-{os.getpid()}")
        os.symlink(version, tmp_path / "current")

        removed = remove_stale_temporaries(tmp_path)
    finally:
        zombie.wait(timeout=30)
    assert sorted(removed) == sorted([names["dead"], names["zombie"], f".current-{finished.pid}"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [names["mine"], names["old"], version, f".current-{os.getpid()}", "current"]
    )
    assert remove_stale_temporaries(tmp_path) == []
    assert remove_stale_temporaries(tmp_path / "missing") == []
