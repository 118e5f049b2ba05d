"""The change log: durable, ordered, shared by processes, all-or-none batches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from recommender.changelog import ChangeLog
from recommender.errors import InvalidInputError

RECORD = {"id": "a1", "title": "Tram line approved", "body": "The council approved the tram line."}


def test_changes_come_back_in_order_and_truncation_keeps_numbering(tmp_path: Path) -> None:
    with ChangeLog(tmp_path) as log:
        assert log.last_seq() == 0 and list(log.since(0)) == []
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
    assert (tmp_path / "changes.sqlite").is_file()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("replace", "a1", RECORD), "a change must be 'upsert' or 'delete', got 'replace'"),
        (("upsert", "", RECORD), "a change needs an article id, got ''"),
        (("upsert", "a1", None), "an upsert carries a record and a delete none (upsert of 'a1')"),
        (("delete", "a1", RECORD), "an upsert carries a record and a delete none (delete of 'a1')"),
    ],
)
def test_a_malformed_change_is_refused_and_nothing_is_logged(tmp_path: Path, change: tuple, message: str) -> None:
    with ChangeLog(tmp_path) as log:
        log.append("upsert", "a0", RECORD)
        with pytest.raises(InvalidInputError) as info:
            log.append_many([("upsert", "ok", RECORD), change])
        assert str(info.value) == message
        assert [c.article_id for c in log.since(0)] == ["a0"]


WRITER = """
import sys
from recommender.changelog import ChangeLog
log = ChangeLog(sys.argv[1])
for n in range(int(sys.argv[2])):
    seq = log.append("upsert", f"{sys.argv[3]}-{n}", {"id": f"{sys.argv[3]}-{n}", "title": "t" * 2000})
    print(seq, flush=True)
"""


def test_processes_opening_a_new_log_together_share_one_order(tmp_path: Path) -> None:
    # Four processes open the same new log at once: switching it to WAL raced
    # ("database is locked") until the opening was retried.
    names = "pqrs"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "75", name], stdout=subprocess.PIPE, text=True)
        for name in names
    ]
    acknowledged = []
    for writer in writers:
        out, _ = writer.communicate(timeout=120)
        assert writer.returncode == 0
        acknowledged += [int(line) for line in out.split()]
    with ChangeLog(tmp_path) as log:
        changes = list(log.since(0))
    assert sorted(acknowledged) == [c.seq for c in changes] == list(range(1, 301))
    assert {c.article_id for c in changes} == {f"{p}-{n}" for p in names for n in range(75)}


@pytest.mark.slow
def test_every_acknowledged_change_survives_kill_9(tmp_path: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), "100000", "k"], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    acknowledged = [int(writer.stdout.readline()) for _ in range(300)]
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    writer.stdout.close()
    with ChangeLog(tmp_path) as log:
        changes = list(log.since(0))
    seqs = [c.seq for c in changes]
    # Every acknowledged write is there; what follows was committed whole or not at all.
    assert set(acknowledged) <= set(seqs) and seqs == list(range(1, len(seqs) + 1))
    assert all(c.record == {"id": c.article_id, "title": "t" * 2000} for c in changes)
