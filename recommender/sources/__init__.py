"""Where articles come from: corpus files, WordPress, feeds, Markdown, HTML pages, SQL.

A :class:`Source` names a kind and a location. :func:`records_of` streams its
raw records as ``(position, record)`` pairs: ``record`` is a dict in the
corpus format (``id``, ``title``, ``body``, ``url``, ``excerpt``, ``image``,
``published_at``, ``section``, ``tags``, ``author``, ``language``) or a
:class:`~recommender.corpus.RecordError` for a record that breaks a rule, and
``position`` is a line number (files) or a label such as ``"item 3"`` or
``"row id=17"``. :func:`recommender.corpus.read_corpus` validates the records
and applies ``on_error``. A problem with the whole source (a missing file,
XML that is not well formed, a query that fails) raises
:class:`~recommender.errors.CorpusError` naming the source.

Each kind lives in a module of its own and is imported only when used.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CorpusError, InvalidInputError

if TYPE_CHECKING:
    from ..corpus import RecordError

# kind -> module (in this package) with a ``records(source)`` function.
KINDS = {
    "file": "files",
    "wxr": "wxr",
    "wp-json": "wpjson",
    "feed": "feed",
    "markdown": "markdown",
    "html": "html",
    "sql": "sql",
}

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_USER_AGENT = "recommender (related-article engine)"


@dataclass(frozen=True)
class Source:
    """One place to read articles from.

    ``post_types`` (WordPress) lists the post types read (``post`` by
    default; ``page`` too with ``--post-type page``); ``query`` is the SQL
    query of a ``sql`` source; ``timeout`` (seconds), ``max_bytes`` and
    ``user_agent`` apply to every URL a source fetches.
    """

    kind: str
    location: str
    post_types: tuple[str, ...] = ("post",)
    query: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    user_agent: str = DEFAULT_USER_AGENT

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidInputError(f"source kind must be one of {', '.join(sorted(KINDS))}, got {self.kind!r}")
        if not self.location:
            raise InvalidInputError(f"a {self.kind} source needs a location")
        if self.kind == "sql" and not self.query:
            raise InvalidInputError("a sql source needs a query (--query 'SELECT id, title, body FROM ...')")
        if not self.timeout > 0:
            raise InvalidInputError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        if self.max_bytes < 1:
            raise InvalidInputError(f"max_bytes must be at least 1, got {self.max_bytes!r}")

    @property
    def name(self) -> str:
        """The location as messages show it: a database URL's password masked."""
        if self.kind == "sql":
            from .sql import masked

            return masked(self.location)
        return self.location

    @property
    def is_url(self) -> bool:
        return self.location.startswith(("http://", "https://"))


Record = tuple[int | str, "dict[str, Any] | RecordError"]


def records_of(item: Source | str | os.PathLike[str]) -> Iterator[Record]:
    """Stream the raw records of a source, or of a path whose kind is sniffed."""
    source = item if isinstance(item, Source) else Source(sniff(Path(item)), str(item))
    module = importlib.import_module(f".{KINDS[source.kind]}", __name__)
    records: Iterator[Record] = module.records(source)
    return records


def folder_files(root: Path, suffixes: tuple[str, ...], what: str) -> tuple[list[Path], Path]:
    """The files with ``suffixes`` below a folder (hidden ones left out), sorted, and the folder they are relative to.

    A single file stands for itself; a missing path or a folder without such
    files is a CorpusError naming ``what`` was looked for.
    """
    if root.is_file():
        return [root], root.parent
    if not root.is_dir():
        raise CorpusError(f"{root}: no such folder: the path does not exist")
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in suffixes
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not files:
        raise CorpusError(f"{root}: no {what} ({', '.join(suffixes)}) in this folder")
    return files, root


def sniff(path: Path) -> str:
    """The source kind of a path where it is unambiguous; CorpusError where it is not.

    Corpus files by their suffix (``.jsonl``, ``.ndjson``, ``.json``, ``.csv``,
    optionally ``.gz``); ``.xml``/``.rss``/``.atom`` files by their root
    element (a WordPress export is RSS with the ``wp`` namespace); folders by
    the files they hold (``.md`` for markdown, ``.html`` for html).
    """
    from ..corpus import FORMATS

    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in FORMATS:
        return "file"
    if path.is_dir():
        kinds = {
            kind
            for kind, patterns in (("markdown", ("*.md", "*.markdown")), ("html", ("*.html", "*.htm")))
            if any(next(path.rglob(p), None) for p in patterns)
        }
        if len(kinds) == 1:
            return kinds.pop()
        if kinds:
            raise CorpusError(
                f"{path} is a directory of markdown and html files: name its kind with --source KIND {path}"
            )
        raise CorpusError(
            f"{path} is a directory: give corpus files (.jsonl, .ndjson, .json or .csv, optionally with .gz)"
        )
    if suffix in (".xml", ".rss", ".atom", ".rdf") and path.is_file():  # .gz too: suffixes lost it above
        head = _head(path)
        if b"xmlns:wp=" in head or b"/export/1." in head:
            return "wxr"
        if b"<rss" in head or b"<feed" in head or b"<rdf:RDF" in head:
            return "feed"
        raise CorpusError(f"{path}: not a WordPress export or a feed: name its kind with --source KIND {path}")
    if path.is_file() or not path.exists():
        # corpus_format says which suffixes are known, or that the file is missing.
        return "file"
    raise CorpusError(f"{path}: unknown corpus source: name its kind with --source KIND {path}")


def _head(path: Path, size: int = 4096) -> bytes:
    """The first bytes of a file, decompressed when it is gzip."""
    import gzip

    with open(path, "rb") as handle:
        head = handle.read(size)
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as handle:
                return handle.read(size)
        except (OSError, EOFError):
            return head
    return head
