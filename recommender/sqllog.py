"""The change log in a shared SQL database: several replicas, on several machines, one log.

Chosen by giving a database URL (``RECOMMENDER_LOG_URL`` for the command line
and the service; an SQLAlchemy URL, ``postgresql://`` going through psycopg 3)
instead of the SQLite file of the models directory, with the same methods and
meaning as :class:`~recommender.changelog.ChangeLog`. Two tables, created on
first use: ``recommender_changes`` (the changes, numbered by an identity
column, numbers never reused) and ``recommender_about`` (the log's identity).

Durable: an append returns once its COMMIT has returned, and PostgreSQL
answers a COMMIT after flushing its WAL (``synchronous_commit=on``, the
default), so an acknowledged write survives a crash of the database server as
well as of the replica. A server set to ``synchronous_commit=off`` gives that up.

In order: a reader applies changes by sequence number and remembers the last
one applied, so a change must never become visible after a higher one. A
number is drawn when a row is inserted, not when its transaction commits: two
writers could draw 7 and 8 and commit 8 first, and a reader that saw 8 would
skip 7 forever. So an append first takes ``LOCK TABLE ... IN EXCLUSIVE MODE``
(held to its COMMIT): appends run one at a time, each draws and commits its
numbers before the next draws, and readers (plain SELECTs) are never blocked.
A rolled-back append leaves a gap that stays a gap. SQLite (through
SQLAlchemy, a cheap second backend for tests) serialises its writers by itself
and has no LOCK TABLE.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Double,
    Identity,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from .changelog import Change, Op, change_row
from .errors import InvalidInputError, LogUnavailableError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

metadata = MetaData()
changes = Table(
    "recommender_changes",
    metadata,
    # INTEGER on SQLite: only an INTEGER PRIMARY KEY numbers its rows (and with AUTOINCREMENT never reuses a number).
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), Identity(), primary_key=True),
    Column("op", String(6), CheckConstraint("op IN ('upsert', 'delete')"), nullable=False),
    Column("article_id", Text, nullable=False),
    Column("record", Text),  # the article's JSON (None for a delete)
    Column("at", Double, nullable=False),
    sqlite_autoincrement=True,
)
about = Table(
    "recommender_about",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
_PAGE = 1000  # changes read per query by `since`, which holds no connection between pages
_CREATE_LOCK = 0x7265636C6F67  # pg_advisory_xact_lock key of table creation ("reclog")
# Another process created the tables or the log id meanwhile: unique_violation,
# duplicate_table, duplicate_object (PostgreSQL); SQLite's own words.
_CREATED_MEANWHILE = {"23505", "42P07", "42710"}


def log_url(url: str) -> URL:
    """The SQLAlchemy URL of a log; ``postgresql://`` (or ``postgres://``) goes through psycopg 3."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise InvalidInputError(f"the change log URL {masked(url)!r} is not a database URL") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def masked(url: str) -> str:
    """The URL with its password replaced by ``***``, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(unparseable URL)"


class SqlChangeLog:
    """The change log in the database at ``url`` (one engine per instance; use one instance per thread)."""

    def __init__(self, url: str, *, lock_timeout: float = 10.0) -> None:
        self.url = url
        self.lock_timeout = lock_timeout
        self._engine: Engine | None = None
        self._ready = False  # tables and log id checked by this instance
        self._seen = False  # the tables were found

    def _db(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(log_url(self.url), pool_size=1, max_overflow=4, pool_pre_ping=True)
        return self._engine

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """A database that cannot be reached (or fails) is a LogUnavailableError naming it, its password masked."""
        try:
            yield
        except OperationalError as exc:
            reason = " ".join(str(exc.orig).split())
            password = log_url(self.url).password  # the URL parsed: the engine was made from it
            if password:
                reason = reason.replace(str(password), "***")
            raise LogUnavailableError(f"change log {masked(self.url)}: {reason}") from None

    def _created(self) -> Engine:
        """The engine, once the tables and the log id exist (created by the first process that needs them)."""
        engine = self._db()
        if not self._ready:
            with self._errors():
                _create(engine, time.monotonic() + self.lock_timeout)
            self._ready = self._seen = True
        return engine

    def exists(self) -> bool:
        """Whether the log's tables exist; creates nothing."""
        if not self._seen:
            with self._errors(), self._db().connect() as connection:
                self._seen = inspect(connection).has_table(changes.name)
        return self._seen

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._ready = False

    def __enter__(self) -> SqlChangeLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(self, op: Op, article_id: str, record: dict[str, Any] | None = None) -> int:
        """Log one change durably (committed); returns its sequence number."""
        return self.append_many([(op, article_id, record)])[-1]

    def append_many(self, batch: Iterable[tuple[Op, str, dict[str, Any] | None]]) -> list[int]:
        """Log several changes in one transaction (all or none, committed on return); their sequence numbers."""
        names = ("op", "article_id", "record", "at")
        rows = [dict(zip(names, change_row(op, article_id, record), strict=True)) for op, article_id, record in batch]
        if not rows:
            raise InvalidInputError("no change to log")
        engine = self._created()
        with self._errors(), engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Appends one at a time, so that numbers commit in order (see the module's docstring).
                connection.execute(text(f"LOCK TABLE {changes.name} IN EXCLUSIVE MODE"))
            # In the rows' order: the numbers are drawn in that order too (the insert's rows are sorted).
            statement = insert(changes).returning(changes.c.seq, sort_by_parameter_order=True)
            return [int(seq) for seq in connection.execute(statement, rows).scalars()]

    def since(self, seq: int = 0) -> Iterator[Change]:
        """The changes after ``seq``, in order (read a page at a time)."""
        engine = self._created()
        query = select(changes.c.seq, changes.c.op, changes.c.article_id, changes.c.record, changes.c.at)
        while True:
            with self._errors(), engine.connect() as connection:
                rows = connection.execute(query.where(changes.c.seq > seq).order_by(changes.c.seq).limit(_PAGE)).all()
            for number, op, article_id, record, at in rows:
                yield Change(int(number), op, article_id, json.loads(record) if record is not None else None, at)
            if len(rows) < _PAGE:
                return
            seq = int(rows[-1][0])

    def log_id(self) -> str:
        """This log's identity, drawn when it was created (a log dropped and started again has another)."""
        with self._errors(), self._created().connect() as connection:
            return str(connection.scalar(select(about.c.value).where(about.c.key == "log_id")))

    def last_seq(self) -> int:
        """The sequence number of the newest change the log holds (0 when it holds none, as after a compaction)."""
        with self._errors(), self._created().connect() as connection:
            return int(connection.scalar(select(func.coalesce(func.max(changes.c.seq), 0))) or 0)

    def truncate(self, through: int) -> int:
        """Forget the changes up to ``through`` (folded into a new bundle); returns how many."""
        with self._errors(), self._created().begin() as connection:
            return int(connection.execute(delete(changes).where(changes.c.seq <= through)).rowcount)


def _create(engine: Engine, deadline: float) -> None:
    """Create the tables and draw the log id, unless another process did; retried while others race to it."""
    while True:
        try:
            with engine.begin() as connection:
                _create_in(connection)
            return
        except DBAPIError as exc:
            code = getattr(exc.orig, "sqlstate", None)
            said = str(exc.orig)
            raced = code in _CREATED_MEANWHILE or "already exists" in said or "UNIQUE constraint" in said
            if not (raced or "database is locked" in said) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _create_in(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # One creator at a time (DDL is transactional there): the others wait, then find the tables.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATE_LOCK})
    metadata.create_all(connection, checkfirst=True)
    if connection.scalar(select(about.c.value).where(about.c.key == "log_id")) is None:
        connection.execute(insert(about).values(key="log_id", value=secrets.token_hex(16)))
