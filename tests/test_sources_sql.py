"""The sql source: the same checks against SQLite (always) and a real PostgreSQL server (a cluster of our own).

The PostgreSQL cluster (fixture ``postgres_server``, see ``tests/postgres.py``)
lives in a temporary folder, is started with Debian's ``initdb``/``pg_ctl`` as
an unprivileged user, and is stopped when the module's tests are done. Where
the binaries are missing its tests skip, or fail when CI is set.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from recommender import Recommender, TrainOptions, read_corpus
from recommender.errors import CorpusError
from recommender.sources import Source, records_of
from recommender.sources.sql import _plain, database_url
from recommender.values import parse_iso

from .conftest import TINY
from .postgres import PASSWORD, Server, free_port

# The same tables in both databases ---------------------------------------------------


@dataclass
class Database:
    """A database with a ``posts`` table (the tiny corpus) and a ``fields`` table (types and NULLs)."""

    backend: str
    url: str
    execute: Callable[[Sequence[tuple[str, Sequence[Any]]]], None]  # statements and their parameters
    count: Callable[[str], int]


WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
UNICODE_TITLE = "Café über naïve — 日本語 ✓"
FIELDS = [
    (
        1,
        UNICODE_TITLE,
        None,
        WHEN,
        WHEN.replace(tzinfo=None),
        WHEN.date(),
        ["alpha", "beta", "alpha"],
        Decimal(7),
        None,
    ),
    (2, "Second", "A body.", None, None, None, None, None, "Ana"),
]
SCHEMA = {
    "sqlite": [
        "CREATE TABLE posts (id TEXT, title TEXT, body TEXT, section TEXT, tags TEXT, published_at TEXT)",
        "CREATE TABLE fields (id INTEGER, title TEXT, body TEXT, published_at TEXT, created TEXT, day TEXT,"
        " tags TEXT, views NUMERIC, author TEXT)",
    ],
    "postgresql": [
        "DROP TABLE IF EXISTS posts, fields CASCADE",
        "DROP FUNCTION IF EXISTS wipe",
        "CREATE TABLE posts (id text, title text, body text, section text, tags text[], published_at date)",
        "CREATE TABLE fields (id bigint, title text, body text, published_at timestamptz, created timestamp,"
        " day date, tags text[], views numeric, author text)",
    ],
}


def _for_sqlite(value: Any) -> Any:
    """SQLite has no date, array or decimal type: the text a site's SQLite database would hold."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return ", ".join(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def _fill(database: Database) -> None:
    statements: list[tuple[str, Sequence[Any]]] = [(statement, ()) for statement in SCHEMA[database.backend]]
    mark = "?" if database.backend == "sqlite" else "%s"
    for r in TINY:
        post = [r["id"], r["title"], r["body"], r["section"], r["tags"], date.fromisoformat(str(r["published_at"]))]
        statements.append((f"INSERT INTO posts VALUES ({', '.join([mark] * 6)})", post))
    for row in FIELDS:
        statements.append((f"INSERT INTO fields VALUES ({', '.join([mark] * 9)})", row))
    database.execute(statements)


def _sqlite_database(folder: Path) -> Database:
    path = folder / "site.db"

    def execute(statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        with sqlite3.connect(path) as db:
            for statement, params in statements:
                db.execute(statement, [_for_sqlite(v) for v in params])
        db.close()

    def count(table: str) -> int:
        with sqlite3.connect(path) as db:
            (n,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
        db.close()
        return int(n)

    database = Database("sqlite", f"sqlite:///{path}", execute, count)
    _fill(database)
    return database


def _postgres_database(server: Server) -> Database:
    def execute(statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        with server.connect() as db:
            for statement, params in statements:
                db.execute(statement, params)

    def count(table: str) -> int:
        with server.connect() as db:
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    database = Database("postgresql", server.url(), execute, count)
    _fill(database)
    return database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "sqlite":
        return _sqlite_database(tmp_path)
    return _postgres_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def postgres(postgres_server: Server) -> Database:
    return _postgres_database(postgres_server)


def _read(database: Database, query: str, on_error: str = "fail") -> Any:
    return read_corpus(Source("sql", database.url, query=query), on_error=on_error)


def _error(database: Database, query: str, *, masked: bool = True) -> str:
    """The CorpusError message of a read; the password masked unless ``masked`` is False (a known gap)."""
    with pytest.raises(CorpusError) as caught:
        _read(database, query)
    message = str(caught.value)
    assert not masked or PASSWORD not in message
    return message


# The contract, on both databases ----------------------------------------------------


def test_fields_read(database: Database) -> None:
    query = "SELECT id, title, body, published_at, tags, views, author FROM fields ORDER BY id"
    first, second = _read(database, query).articles
    assert (first.id, first.title, first.body, first.author) == ("1", UNICODE_TITLE, "", None)
    assert first.tags == ("alpha", "beta")
    assert parse_iso(first.published_at, "published_at") == WHEN
    assert first.extra == {"views": 7}
    assert (second.id, second.body, second.author, second.tags, second.published_at) == (
        "2",
        "A body.",
        "Ana",
        (),
        None,
    )
    assert second.extra == {}


@pytest.mark.parametrize(
    ("column", "expected"),
    [("published_at", WHEN), ("created", WHEN.replace(tzinfo=None)), ("day", WHEN.date())],
    ids=["aware", "naive", "date"],
)
def test_dates(database: Database, column: str, expected: date) -> None:
    (article,) = _read(database, f"SELECT id, title, {column} AS published_at FROM fields WHERE id = 1").articles
    when = parse_iso(article.published_at, "published_at")
    assert when == expected and type(when) is type(expected)


def test_positions_name_the_row_by_id(database: Database) -> None:
    query = "SELECT id, title FROM fields WHERE id = 1 UNION ALL SELECT NULL, 'no id'"
    assert [label for label, _ in records_of(Source("sql", database.url, query=query))] == ["row id=1", "row 2"]


def test_many_rows_stream_across_batches(database: Database) -> None:
    query = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)"
        " SELECT i AS id, 'title ' || i AS title FROM n"
    )
    rows = list(records_of(Source("sql", database.url, query=query)))
    assert len(rows) == 2500
    assert rows[-1] == ("row id=2500", {"id": "2500", "title": "title 2500"})


def test_bad_record_fails_or_is_skipped(database: Database) -> None:
    query = "SELECT id, title, body FROM posts UNION ALL SELECT '', 'Empty id', 'A body.'"
    # Record messages name the source as read_corpus does: see test_postgres_record_errors_hide_the_password.
    assert "(row 14): missing id: id is empty" in _error(database, query, masked=False)
    report = _read(database, query, on_error="skip")
    assert len(report.articles) == len(TINY)
    assert [(p.line, p.kind) for p in report.skipped] == [("row 14", "missing id")]


def test_a_query_without_id_lists_its_columns(database: Database) -> None:
    message = _error(database, "SELECT title, body AS text FROM posts")
    assert "the query returns no id column" in message and message.endswith("it returns: title, text")


def test_a_column_twice_is_refused(database: Database) -> None:
    assert "more than once: id" in _error(database, "SELECT id, title, id FROM posts")


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("DELETE FROM posts", "got a statement starting with DELETE"),
        ("SELECT 1; DROP TABLE posts", "several separated by ';'"),
        ("SELECT id FROM posts; -- then\nUPDATE posts SET title = ''", "several separated by ';'"),
        ("/* SELECT */ UPDATE posts SET title = ''", "got a statement starting with UPDATE"),
        ("   ", "got no statement"),
    ],
)
def test_only_a_single_select_runs(database: Database, query: str, says: str) -> None:
    message = _error(database, query)
    assert "the query must be a single SELECT" in message and says in message
    assert database.count("posts") == len(TINY)


def test_semicolons_in_literals_and_at_the_end_are_fine(database: Database) -> None:
    query = "-- related posts\nWITH p AS (SELECT * FROM posts WHERE title <> 'a;b') SELECT id, title FROM p;  "
    assert len(_read(database, query).articles) == len(TINY)


def test_a_missing_table_is_the_database_message(database: Database) -> None:
    message = _error(database, "SELECT id, title FROM missing_table")
    assert "the query failed:" in message and "missing_table" in message


def test_training_through_the_library(database: Database) -> None:
    report = _read(database, "SELECT id, title, body, section, tags, published_at FROM posts")
    model = Recommender.fit(report, TrainOptions(min_df=1, n_jobs=1, min_similarity=0.01))
    related = [model.ids[item.index] for item in model.related("f1").items]
    assert related and set(related) <= {"f2", "f3", "f4"}


# SQLite and URLs: no server needed ---------------------------------------------------


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(CorpusError, match="no such database file"):
        read_corpus(Source("sql", f"sqlite:///{path}", query="SELECT 1 AS id"))
    assert not path.exists()


@pytest.mark.parametrize(
    ("location", "query", "says"),
    [
        ("postgresql://reader:{pw}@127.0.0.1:{port}/site", "SELECT 1 AS id", "cannot connect"),
        ("postgresql://reader:{pw}@127.0.0.1:notaport/site", "SELECT 1 AS id", "not a database URL"),
        ("nosuchdriver://reader:{pw}@localhost/site", "SELECT 1 AS id", "unknown database driver"),
        ("postgresql://reader:{pw}@127.0.0.1:{port}/site", "DELETE FROM posts", "single SELECT"),
    ],
    ids=["refused", "bad-url", "unknown-driver", "not-select"],
)
def test_a_password_never_appears_in_an_error(location: str, query: str, says: str) -> None:
    url = location.format(pw=PASSWORD, port=free_port())
    with pytest.raises(CorpusError) as caught:
        read_corpus(Source("sql", url, query=query))
    message = str(caught.value)
    assert PASSWORD not in message and "reader:***@" in message and says in message


def test_postgresql_urls_use_psycopg() -> None:
    assert database_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert database_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert database_url("postgresql+psycopg2://u@h/db").drivername == "postgresql+psycopg2"
    assert database_url("sqlite:///site.db").drivername == "sqlite"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05+00:00"),
        (date(2026, 1, 2), "2026-01-02"),
        (Decimal("12"), 12),
        (Decimal("1.5"), 1.5),
        (UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (["a", None], ["a", None]),
        ({"k": 1}, {"k": 1}),
    ],
)
def test_column_values_become_corpus_values(value: Any, expected: Any) -> None:
    assert _plain(value) == expected


# PostgreSQL only -------------------------------------------------------------------


def _reader_sessions(postgres: Database) -> list[tuple[str, str]]:
    """(state, last query) of the sessions the sql source opened (its application name is 'recommender')."""
    import psycopg

    with psycopg.connect(postgres.url, autocommit=True) as db:
        rows = db.execute("SELECT state, query FROM pg_stat_activity WHERE application_name = 'recommender'").fetchall()
    return [(str(state), str(query)) for state, query in rows]


@pytest.mark.slow
def test_postgres_streams_through_a_server_side_cursor_and_lets_go(postgres: Database) -> None:
    rows: Any = records_of(Source("sql", postgres.url, query="SELECT id, title FROM posts"))
    try:
        assert next(rows)[0] == "row id=f1"
        # Paused after one row: the session waits inside its transaction, fetching from a server-side cursor.
        ((state, query),) = _reader_sessions(postgres)
        assert state == "idle in transaction" and query.startswith("FETCH FORWARD")
    finally:
        rows.close()
    assert _wait_for_no_reader(postgres) == []


@pytest.mark.slow
def test_postgres_a_failed_read_lets_go(postgres: Database) -> None:
    with pytest.raises(CorpusError) as caught:
        _read(postgres, "SELECT id, title FROM posts UNION ALL SELECT '', 'no id'")
    # The error is still held here: the read's session must be gone all the same.
    assert _wait_for_no_reader(postgres) == [], caught.value


def _wait_for_no_reader(postgres: Database) -> list[tuple[str, str]]:
    deadline = time.monotonic() + 10
    while _reader_sessions(postgres) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _reader_sessions(postgres)


@pytest.mark.slow
def test_postgres_refuses_a_write_hidden_in_with(postgres: Database) -> None:
    message = _error(postgres, "WITH gone AS (DELETE FROM posts RETURNING id) SELECT id FROM gone")
    assert "the query failed:" in message
    assert postgres.count("posts") == len(TINY)


@pytest.mark.slow
def test_postgres_transaction_is_read_only(postgres: Database) -> None:
    # A function that writes passes the statement check; the read-only transaction stops it.
    postgres.execute([("CREATE FUNCTION wipe() RETURNS int LANGUAGE sql AS 'DELETE FROM posts RETURNING 1'", ())])
    message = _error(postgres, "SELECT wipe() AS id")
    assert "read-only transaction" in message
    assert postgres.count("posts") == len(TINY)


@pytest.mark.slow
def test_postgres_wrong_password(postgres_server: Server) -> None:
    url = postgres_server.url(password="wrong-" + PASSWORD)
    with pytest.raises(CorpusError) as caught:
        read_corpus(Source("sql", url, query="SELECT 1 AS id"))
    message = str(caught.value)
    assert "cannot connect" in message and "password authentication failed" in message
    assert PASSWORD not in message and "postgres:***@" in message


@pytest.mark.slow
def test_postgres_record_errors_hide_the_password(postgres: Database) -> None:
    _error(postgres, "SELECT '' AS id, 'title' AS title")
