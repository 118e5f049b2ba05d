"""SQL databases: one SELECT whose columns, by name, are the fields of the corpus records.

``source.location`` is an SQLAlchemy URL (``sqlite:///site.db``,
``postgresql://reader@db.example/site``; a plain ``postgresql://`` URL uses
psycopg 3) and ``source.query`` the statement, for instance
``SELECT post_id AS id, title, body, created AS published_at FROM posts``.
Columns named after the corpus fields (``id``, ``title``, ``body``, ``url``,
``excerpt``, ``image``, ``published_at``, ``section`` or ``category``,
``tags``, ``author``, ``language``) fill them; other columns are kept as extra
metadata, as in a JSON Lines corpus. A NULL is a missing value; dates and
datetimes become ISO 8601 (an aware datetime keeps its offset); ``tags`` may
be a comma-separated string or a PostgreSQL array.

Rows are streamed (a server-side cursor where the driver has one) so a large
table is read in constant memory. Each record's position is ``row id=<id>``,
or ``row <n>`` when the id is missing.

Read-only use: only a single ``SELECT`` or ``WITH`` statement is accepted,
the transaction is marked read-only where the database supports it
(PostgreSQL's ``SET TRANSACTION READ ONLY``, SQLite's ``PRAGMA query_only``)
and it is always rolled back. This is a guard against mistakes, not a
security boundary: the query can still read whatever the user may read and
call functions whose effects escape the transaction, and other databases get
only the statement check and the rollback. Give the recommender a database
user that can only read what it needs.

Every problem with the database or the query raises
:class:`~recommender.errors.CorpusError` naming the source with its password
masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ..errors import CorpusError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

    from . import Record, Source

# Rows fetched from the server per round trip: memory stays at one batch.
BATCH_ROWS = 1000

# What the statement check skips: string literals, quoted identifiers, comments
# and PostgreSQL dollar-quoted strings, where a ';' or a keyword means nothing.
_NOT_CODE = re.compile(
    r"""
    '(?:[^']|'')*'
  | "(?:[^"]|"")*"
  | `[^`]*`
  | --[^\n]*
  | /\*.*?\*/
  | \$(?P<tag>(?:[A-Za-z_]\w*)?)\$.*?\$(?P=tag)\$
    """,
    re.DOTALL | re.VERBOSE,
)
_TRAILING = re.compile(r"[;\s]+$")


def records(source: Source) -> Iterator[Record]:
    """Stream the rows of ``source.query`` as raw corpus records labelled ``row id=<id>``."""
    from sqlalchemy.exc import SQLAlchemyError

    url = database_url(source.location)
    name = masked(source.location)
    statement = check_select(source.query or "", name)
    engine = _engine(url, source, name)
    try:
        try:
            connection = engine.connect()
        except SQLAlchemyError as exc:
            raise CorpusError(f"{name}: cannot connect: {_reason(exc, url)}") from None
        with connection:
            try:
                _read_only(connection)
                # yield_per: a server-side cursor read in batches; no_parameters: the driver runs the SQL
                # as written, so the '%' of LIKE '%word%' is not taken for a placeholder.
                result = connection.execution_options(yield_per=BATCH_ROWS, no_parameters=True).exec_driver_sql(
                    statement
                )
                columns = _columns(list(result.keys()), name)
                for number, row in enumerate(result, start=1):
                    raw = {key: _plain(value) for key, value in zip(columns, row, strict=True) if value is not None}
                    if "id" in raw:
                        raw["id"] = _id(raw["id"])
                    yield _label(raw.get("id"), number), raw
                connection.rollback()
            except SQLAlchemyError as exc:
                raise CorpusError(f"{name}: the query failed: {_reason(exc, url)}") from None
    finally:
        engine.dispose()


def database_url(location: str) -> URL:
    """The SQLAlchemy URL of a location; ``postgresql://`` (or ``postgres://``) goes through psycopg 3."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(location)
    except (ArgumentError, ValueError) as exc:
        raise CorpusError(f"{masked(location)}: not a database URL ({exc})") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def masked(location: str) -> str:
    """The location with its password replaced by ``***``, for messages and logs."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(location).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        # Not parseable as a URL: still hide anything between 'user:' and '@'.
        return re.sub(r"(//[^/:@]*:)[^@/]*@", r"\1***@", location)


def check_select(query: str, name: str) -> str:
    """The query without its trailing ';' if it is one SELECT or WITH statement; CorpusError otherwise."""
    code = _TRAILING.sub("", _NOT_CODE.sub(" ", query))
    first = re.match(r"[\s(]*(\w+)", code)
    keyword = first.group(1).upper() if first else ""
    if keyword not in ("SELECT", "WITH"):
        got = f"a statement starting with {keyword}" if keyword else "no statement"
        raise CorpusError(f"{name}: the query must be a single SELECT (or WITH ... SELECT) statement, got {got}")
    if ";" in code:
        raise CorpusError(f"{name}: the query must be a single SELECT statement, got several separated by ';'")
    return _TRAILING.sub("", query)


def _engine(url: URL, source: Source, name: str) -> Any:
    """An engine without a pool (one connection per read); CorpusError for an unknown or missing driver."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError
    from sqlalchemy.pool import NullPool

    backend = url.get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "postgresql":
        # The application name lets a DBA tell the recommender's sessions apart in pg_stat_activity.
        connect_args.update(connect_timeout=max(1, round(source.timeout)), application_name="recommender")
    elif backend == "sqlite":
        database = url.database or ""
        # SQLite creates a missing file on connect: a reader must not leave an empty database behind.
        if database not in ("", ":memory:") and not database.startswith("file:") and not Path(database).is_file():
            raise CorpusError(f"{name}: no such database file: {database}")
        connect_args["timeout"] = source.timeout
    try:
        return create_engine(url, poolclass=NullPool, connect_args=connect_args)
    except ArgumentError as exc:
        raise CorpusError(f"{name}: unknown database driver ({exc})") from None
    except ImportError as exc:
        raise CorpusError(f"{name}: the database driver is not installed ({exc})") from None


def _read_only(connection: Connection) -> None:
    """Ask the database to refuse writes in this transaction, where it knows how."""
    backend = connection.dialect.name
    if backend == "postgresql":
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")
    elif backend == "sqlite":
        connection.exec_driver_sql("PRAGMA query_only = ON")


def _columns(columns: list[str], name: str) -> list[str]:
    """The column names, checked: an ``id`` column, no name twice."""
    if "id" not in columns:
        listed = ", ".join(columns) if columns else "no columns"
        raise CorpusError(f"{name}: the query returns no id column (name one with AS id); it returns: {listed}")
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise CorpusError(f"{name}: the query returns these columns more than once: {', '.join(twice)}")
    return columns


def _plain(value: Any) -> Any:
    """A column value as the corpus reader takes it: JSON-like types, dates as ISO 8601 text."""
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value.is_finite() and value == value.to_integral_value() else float(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _id(value: Any) -> Any:
    """An integer id as text (ids are strings in the corpus); anything else as is, for the reader to judge."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _label(article_id: Any, number: int) -> str:
    text = str(article_id).strip() if article_id is not None else ""
    if not text:
        return f"row {number}"
    return f"row id={text if len(text) <= 40 else text[:40] + '...'}"


def _reason(exc: Exception, url: URL) -> str:
    """The driver's own message (first line, without SQLAlchemy's SQL echo), never the password."""
    from sqlalchemy.exc import DBAPIError

    original = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(original).strip().splitlines()
    reason = lines[0] if lines else type(original).__name__
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return reason
