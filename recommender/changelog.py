"""The durable change log of live writes: upserts and deletes since a bundle was built.

An append-only table in an SQLite database beside the bundles
(``<models_dir>/changes.sqlite``), in WAL mode with ``synchronous=FULL``: a
change is on disk (the WAL fsynced) when :meth:`ChangeLog.append` returns, so a
write acknowledged to a client survives a crash or a ``kill -9``, and a write
that was not committed leaves nothing. Every process (each server worker, the
command line) opens the same file; SQLite serialises the writers and each
change gets the next sequence number, so every reader applies the same
changes in the same order. The standard library's ``sqlite3`` is enough: no
server to start.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, Self

from .errors import InvalidInputError

LOG_FILE = "changes.sqlite"
Op = Literal["upsert", "delete"]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
    article_id TEXT NOT NULL,
    record TEXT,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS about (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO about (key, value) VALUES ('log_id', lower(hex(randomblob(16))));
"""


@dataclass(frozen=True, slots=True)
class Change:
    """One logged write: its sequence number, the operation, the article id and (for an upsert) the record."""

    seq: int
    op: Op
    article_id: str
    record: dict[str, Any] | None
    at: float


class ChangeLogLike(Protocol):
    """What every change log does (:class:`ChangeLog` in SQLite, :class:`~recommender.sqllog.SqlChangeLog`)."""

    def append(self, op: Op, article_id: str, record: dict[str, Any] | None = None) -> int: ...
    def append_many(self, changes: Iterable[tuple[Op, str, dict[str, Any] | None]]) -> list[int]: ...
    def since(self, seq: int = 0) -> Iterator[Change]: ...
    def last_seq(self) -> int: ...
    def truncate(self, through: int) -> int: ...
    def log_id(self) -> str: ...
    def exists(self) -> bool: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> None: ...


def open_log(models_dir: str | os.PathLike[str], url: str | None = None) -> ChangeLogLike:
    """The change log of ``models_dir``: the SQLite file in it, or the database at ``url`` when one is given.

    Nothing is opened or created until the first call that reads or writes.
    """
    if url:
        from .sqllog import SqlChangeLog

        return SqlChangeLog(url)
    return ChangeLog(models_dir)


class ChangeLog:
    """The change log of one models directory (opened lazily, one connection per instance and thread)."""

    def __init__(self, models_dir: str | os.PathLike[str], *, busy_timeout: float = 10.0) -> None:
        self.path = Path(models_dir) / LOG_FILE
        self.busy_timeout = busy_timeout
        self._connection: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
            # Switching a new database to WAL takes an exclusive lock that SQLite
            # does not wait for: two processes opening the log at once saw
            # "database is locked". Retried here, for as long as a busy writer
            # would be waited for.
            deadline = time.monotonic() + self.busy_timeout
            while True:
                try:
                    connection.execute("PRAGMA journal_mode=WAL")
                    connection.executescript(_SCHEMA)
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        connection.close()
                        raise
                    time.sleep(0.01)
            # FULL: the WAL is fsynced at every commit, so a returned append is durable.
            connection.execute("PRAGMA synchronous=FULL")
            self._connection = connection
        return self._connection

    def exists(self) -> bool:
        """Whether the log was created (a service that is never written to has none); creates nothing."""
        return self._connection is not None or self.path.exists()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> ChangeLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(self, op: Op, article_id: str, record: dict[str, Any] | None = None) -> int:
        """Log one change durably; returns its sequence number."""
        return self.append_many([(op, article_id, record)])[-1]

    def append_many(self, changes: Iterable[tuple[Op, str, dict[str, Any] | None]]) -> list[int]:
        """Log several changes in one transaction (all or none); returns their sequence numbers."""
        rows = [change_row(op, article_id, record) for op, article_id, record in changes]
        if not rows:
            raise InvalidInputError("no change to log")
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            seqs = [
                db.execute("INSERT INTO changes (op, article_id, record, at) VALUES (?, ?, ?, ?)", row).lastrowid
                for row in rows
            ]
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return [int(seq) for seq in seqs if seq is not None]

    def since(self, seq: int = 0) -> Iterator[Change]:
        """The changes after ``seq``, in order."""
        cursor = self._db().execute(
            "SELECT seq, op, article_id, record, at FROM changes WHERE seq > ? ORDER BY seq", (seq,)
        )
        for number, op, article_id, record, at in cursor:
            yield Change(number, op, article_id, json.loads(record) if record is not None else None, at)

    def log_id(self) -> str:
        """This log's identity, drawn when it was created (a log deleted and started again has another)."""
        row = self._db().execute("SELECT value FROM about WHERE key = 'log_id'").fetchone()
        return str(row[0])

    def last_seq(self) -> int:
        """The sequence number of the newest change the log holds (0 when it holds none, as after a compaction)."""
        row = self._db().execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()
        return int(row[0])

    def truncate(self, through: int) -> int:
        """Forget the changes up to ``through`` (folded into a new bundle); returns how many."""
        db = self._db()
        removed = db.execute("DELETE FROM changes WHERE seq <= ?", (through,)).rowcount
        return int(removed)


def change_row(op: str, article_id: str, record: dict[str, Any] | None) -> tuple[str, str, str | None, float]:
    """A checked change as stored: (op, article id, the record as JSON text or None, the time); InvalidInputError."""
    if op not in ("upsert", "delete"):
        raise InvalidInputError(f"a change must be 'upsert' or 'delete', got {op!r}")
    if not isinstance(article_id, str) or not article_id:
        raise InvalidInputError(f"a change needs an article id, got {article_id!r}")
    if (op == "upsert") != (record is not None):
        raise InvalidInputError(f"an upsert carries a record and a delete none ({op} of {article_id!r})")
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":")) if record is not None else None
    return op, article_id, text, time.time()
