"""The change log: durable, ordered, shared by processes, all-or-none batches.

The same suite runs against every backend: the SQLite file of the models
directory (the default), the SQL log on SQLite through SQLAlchemy (cheap), and
the SQL log on a real PostgreSQL server (a throwaway cluster, see ``postgres.py``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from recommender.changelog import ChangeLog, ChangeLogLike, open_log
from recommender.errors import InvalidInputError, LogUnavailableError

from .postgres import free_port

RECORD = {"id": "a1", "title": "Tram line approved", "body": "The council approved the tram line."}


@dataclass
class Backend:
    """Where a test's log lives: a models directory, and the database URL (None: its SQLite file)."""

    folder: Path
    url: str | None

    def open(self) -> ChangeLogLike:
        return open_log(self.folder, self.url)


@pytest.fixture(params=["sqlite-file", "sqlalchemy-sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite-file":
        return Backend(tmp_path, None)
    if request.param == "sqlalchemy-sqlite":
        return Backend(tmp_path, f"sqlite:///{tmp_path / 'shared.db'}")
    return Backend(tmp_path, request.getfixturevalue("postgres_server").new_database())


def test_changes_come_back_in_order_and_truncation_keeps_numbering(backend: Backend) -> None:
    with backend.open() as log:
        assert not log.exists()
        assert log.last_seq() == 0 and list(log.since(0)) == [] and log.exists()
        first = log.append("upsert", "a1", RECORD)
        second, third = log.append_many([("upsert", "a2", {**RECORD, "id": "a2"}), ("delete", "a1", None)])
        assert (first, second, third) == (1, 2, 3) and log.last_seq() == 3
        changes = list(log.since(1))
        assert [(c.seq, c.op, c.article_id) for c in changes] == [(2, "upsert", "a2"), (3, "delete", "a1")]
        assert changes[0].record == {**RECORD, "id": "a2"} and changes[1].record is None
        assert log.truncate(2) == 2
        assert [c.seq for c in log.since(0)] == [3]
        # Numbers are never reused, so a reader's position stays meaningful.
        assert log.append("delete", "a2") == 4
        assert log.truncate(10) == 2 and log.append("delete", "a3") == 5 and log.last_seq() == 5
    # Only the default log is a file in the models directory.
    assert (backend.folder / "changes.sqlite").is_file() == (backend.url is None)


def test_a_batch_keeps_its_order_and_the_log_its_identity(backend: Backend) -> None:
    batch = [("upsert", f"b{n}", {"id": f"b{n}"}) if n % 3 else ("delete", f"b{n}", None) for n in range(2500)]
    with backend.open() as log:
        identity = log.log_id()
        assert len(identity) == 32
        seqs = log.append_many(batch)  # type: ignore[arg-type]
        assert seqs == list(range(1, 2501))
        # Read back in pages (the SQL log reads 1000 at a time), in the batch's order.
        assert [(c.seq, c.op, c.article_id, c.record) for c in log.since(0)] == [
            (n + 1, *b) for n, b in enumerate(batch)
        ]
        assert [c.seq for c in log.since(2498)] == [2499, 2500]
    with backend.open() as again:
        assert again.exists() and again.log_id() == identity and again.last_seq() == 2500


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("replace", "a1", RECORD), "a change must be 'upsert' or 'delete', got 'replace'"),
        (("upsert", "", RECORD), "a change needs an article id, got ''"),
        (("upsert", "a1", None), "an upsert carries a record and a delete none (upsert of 'a1')"),
        (("delete", "a1", RECORD), "an upsert carries a record and a delete none (delete of 'a1')"),
    ],
)
def test_a_malformed_change_is_refused_and_nothing_is_logged(backend: Backend, change: tuple, message: str) -> None:
    with backend.open() as log:
        log.append("upsert", "a0", RECORD)
        with pytest.raises(InvalidInputError) as info:
            log.append_many([("upsert", "ok", RECORD), change])
        assert str(info.value) == message
        assert [c.article_id for c in log.since(0)] == ["a0"]
        with pytest.raises(InvalidInputError, match="^no change to log$"):
            log.append_many([])
        assert log.last_seq() == 1


WRITER = """
import sys
from recommender.changelog import open_log
log = open_log(sys.argv[1], sys.argv[4] or None)
for n in range(int(sys.argv[2])):
    seq = log.append("upsert", f"{sys.argv[3]}-{n}", {"id": f"{sys.argv[3]}-{n}", "title": "t" * 2000})
    print(seq, flush=True)
"""


def _writer(backend: Backend, count: int, name: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-c", WRITER, str(backend.folder), str(count), name, backend.url or ""]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def test_processes_opening_a_new_log_together_share_one_order(backend: Backend) -> None:
    # Four processes open the same new log at once: switching it to WAL raced
    # ("database is locked") until the opening was retried; creating the SQL
    # tables races the same way. Meanwhile a reader follows the log as a
    # server does: it must never see a number before every lower one (with
    # concurrent writers on PostgreSQL, a number drawn by a transaction that
    # commits later would otherwise be skipped by a reader for good).
    names = "pqrs"
    writers = [_writer(backend, 75, name) for name in names]
    seen = 0
    try:
        with backend.open() as reader:
            while any(writer.poll() is None for writer in writers) or seen < 300:
                time.sleep(0.002)
                if not reader.exists():
                    continue
                for change in reader.since(seen):
                    assert change.seq == seen + 1, f"the reader saw change {change.seq} after {seen}"
                    seen = change.seq
                assert seen == 300 or any(writer.poll() is None for writer in writers), "changes are missing"
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
    acknowledged = []
    for writer in writers:
        out, _ = writer.communicate(timeout=120)
        assert writer.returncode == 0
        acknowledged += [int(line) for line in out.split()]
    with backend.open() as log:
        changes = list(log.since(0))
    assert sorted(acknowledged) == [c.seq for c in changes] == list(range(1, 301))
    assert {c.article_id for c in changes} == {f"{p}-{n}" for p in names for n in range(75)}


@pytest.mark.slow
def test_every_acknowledged_change_survives_kill_9(backend: Backend) -> None:
    writer = _writer(backend, 100000, "k")
    assert writer.stdout is not None
    acknowledged = [int(writer.stdout.readline()) for _ in range(300)]
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    writer.stdout.close()
    with backend.open() as log:
        changes = list(log.since(0))
    seqs = [c.seq for c in changes]
    # Every acknowledged write is there; what follows was committed whole or not at all.
    assert set(acknowledged) <= set(seqs) and seqs == list(range(1, len(seqs) + 1))
    assert all(c.record == {"id": c.article_id, "title": "t" * 2000} for c in changes)


def test_the_sqlite_file_log_is_the_default(tmp_path: Path) -> None:
    assert isinstance(open_log(tmp_path), ChangeLog) and isinstance(open_log(tmp_path, ""), ChangeLog)


def test_a_log_url_that_is_bad_or_unreachable_is_named_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as bad:
        open_log(tmp_path, "not a url").last_seq()
    assert str(bad.value) == "the change log URL '(unparseable URL)' is not a database URL"
    url = f"postgresql://writer:pw-s3cret@127.0.0.1:{free_port()}/site"
    with open_log(tmp_path, url) as log, pytest.raises(LogUnavailableError) as down:
        log.append("delete", "a1")
    message = str(down.value)
    assert message.startswith(f"change log {url.replace('pw-s3cret', '***')}: connection failed: "), message
    assert "pw-s3cret" not in message and "refused" in message
