"""SIGKILL during a compaction: the old bundle stays current, the log intact, and the next compaction succeeds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recommender.bundle import current_version, list_versions, load_bundle
from recommender.changelog import ChangeLog
from recommender.corpus import article_record, parse_record

from .test_kill import _kill_when, start_training, synthetic_corpus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle of 8,000 articles and a log of a few upserts and deletes."""
    root = tmp_path_factory.mktemp("kill-compact")
    models = root / "models"
    proc = start_training(synthetic_corpus(root / "big.jsonl", 8000), models)
    assert proc.wait(timeout=300) == 0, proc.stderr.read() if proc.stderr else ""
    with ChangeLog(models) as log:
        log.append("upsert", "a1", article_record(parse_record({"id": "a1", "title": "market news edited"})))
        log.append("upsert", "new", article_record(parse_record({"id": "new", "title": "market energy news"})))
        log.append_many(("delete", f"a{i}", None) for i in range(10, 20))
    return models


def _snapshot(models: Path) -> tuple[str | None, list[str], list[tuple[int, str, str]]]:
    with ChangeLog(models) as log:
        return current_version(models), list_versions(models), [(c.seq, c.op, c.article_id) for c in log.since(0)]


def _compact(models: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "recommender", "compact", "--models-dir", str(models)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.parametrize("moment", ["fitting", "writing"])
def test_kill_during_a_compaction(logged: Path, tmp_path: Path, moment: str) -> None:
    models = tmp_path / "models"
    shutil.copytree(logged, models, symlinks=True)
    before = _snapshot(models)
    proc = _compact(models)
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    seen = bytearray()

    def fitting() -> bool:
        chunk = proc.stderr.read() if proc.stderr else None
        if chunk:
            seen.extend(chunk)
        return b"neighbours:" in seen and b"article/s" in seen

    def writing() -> bool:
        return any(p.name.startswith(".tmp-") and any(p.iterdir()) for p in models.iterdir())

    try:
        _kill_when(proc, fitting if moment == "fitting" else writing)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert _snapshot(models) == before
    assert load_bundle(models).manifest["log_seq"] == 0

    done = subprocess.run(
        [sys.executable, "-m", "recommender", "compact", "--quiet", "--models-dir", str(models)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("compacted 12 change(s) through seq 12 into ")
    version, versions, changes = _snapshot(models)
    assert version != before[0] and changes == [] and versions == sorted([before[0] or "", version or ""])
    parts = load_bundle(models)
    assert parts.manifest["log_seq"] == 12 and len(parts.ids) == 8000 - 10 + 1
    assert not [p.name for p in models.iterdir() if p.name.startswith(".")]
