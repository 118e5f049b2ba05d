"""Corpus files: JSON Lines (``.jsonl``, ``.ndjson``), JSON arrays (``.json``) and CSV, optionally gzip-compressed.

Records come with their line number (the element number in a JSON array, the
first line of a CSV record); a record that breaks a rule is yielded as a
:class:`~recommender.corpus.RecordError`, and a file that cannot be read at
all raises :class:`~recommender.errors.CorpusError` naming file and line.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ..corpus import FORMATS, MAX_FIELD_CHARS, RecordError, load_json, type_name
from ..errors import CorpusError

if TYPE_CHECKING:
    from . import Record, Source


def records(source: Source) -> Iterator[Record]:
    """The records of one corpus file."""
    yield from file_records(Path(source.location))


_BOM = b"\xef\xbb\xbf"


def _open_binary(path: Path) -> BinaryIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _open_text(path: Path) -> io.TextIOWrapper:
    # utf-8-sig drops a byte order mark at the start (Excel and Notepad write
    # one) and reads everything else as plain UTF-8.
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", newline="")


def corpus_format(path: Path) -> str:
    """The record format of ``path`` from its suffix, ignoring a trailing ``.gz``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = suffixes[-1] if suffixes else ""
    if fmt not in FORMATS:
        raise CorpusError(
            f"{path}: unknown corpus format {fmt or '(no suffix)'!r}: "
            "expected .jsonl, .ndjson, .json or .csv, optionally with .gz"
        )
    return fmt


def file_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    """The raw records of a JSON Lines, JSON or CSV corpus file, with their line (or element) numbers."""
    if path.is_dir():
        raise CorpusError(
            f"{path} is a directory: give corpus files (.jsonl, .ndjson, .json or .csv, optionally with .gz)"
        )
    fmt = corpus_format(path)
    if not path.exists():
        raise CorpusError(f"{path}: no such corpus file: the path does not exist")
    try:
        with _open_text(path) as handle:
            if fmt in (".jsonl", ".ndjson"):
                yield from jsonl_records(handle)
            elif fmt == ".json":
                yield from _json_array_records(handle, path)
            else:
                yield from _csv_records(handle, path)
    except UnicodeDecodeError:
        raise CorpusError(_bad_byte(path, fmt)) from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise CorpusError(f"{path}: cannot be read as {fmt}: {exc}") from None
    except OSError as exc:
        raise CorpusError(f"{path}: cannot be read as {fmt}: {exc.strerror or exc}") from None


def _bad_byte(path: Path, fmt: str) -> str:
    """Where the first byte that is not UTF-8 lies, as 'file:line: ... column ...'.

    Called only after a decoding error, so that the normal path decodes in C
    at full speed. Lines are counted as the text reader counts them: a line
    ends at a newline, a carriage return and newline, or a lone carriage return.
    """
    line = 1
    with _open_binary(path) as raw:
        for chunk in raw:
            if line == 1 and chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError as exc:
                # The chunk ends at its first newline, so every carriage return
                # before the bad byte is a lone one: a line end of its own.
                pieces = chunk[: exc.start].split(b"\r")
                column = len(pieces[-1].decode("utf-8")) + 1
                return (
                    f"{path}:{line + len(pieces) - 1}: cannot be read as {fmt}: byte 0x{chunk[exc.start]:02x} "
                    f"at column {column} is not valid UTF-8 (save the file as UTF-8)"
                )
            line += 1 + chunk.count(b"\r") - chunk.count(b"\r\n")
    return f"{path}: cannot be read as {fmt}: it is not valid UTF-8 (save the file as UTF-8)"  # pragma: no cover


def jsonl_records(handle: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    """(line number, record or RecordError) for each non-blank line of a JSON Lines text (the batch route too)."""
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            value = load_json(text.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            yield number, RecordError("malformed JSON", f"malformed JSON: {exc.msg} at column {exc.colno}")
            continue
        except RecursionError:
            yield number, RecordError("malformed JSON", "malformed JSON: nested too deeply")
            continue
        yield number, _as_object(value)


def _json_array_records(handle: io.TextIOBase, path: Path) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    text = handle.read()
    try:
        value = load_json(text)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}:{exc.lineno}: malformed JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise CorpusError(f"{path}:1: malformed JSON: nested too deeply") from None
    if isinstance(value, dict) and isinstance(value.get("articles"), list):
        value = value["articles"]
    if not isinstance(value, list):
        raise CorpusError(f"{path}:1: a .json corpus must hold an array of article objects, got {type_name(value)}")
    # Report the position in the array as the "line": element numbers are what
    # a user can find in a pretty-printed or single-line file alike.
    for number, item in enumerate(value, start=1):
        yield number, _as_object(item)


def _csv_records(handle: io.TextIOBase, path: Path) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    csv.field_size_limit(MAX_FIELD_CHARS + 1)
    # strict: a quote still open at the end of the file, or text after a
    # closing quote, is an error instead of a silently merged record.
    reader = csv.reader(handle, strict=True)
    start = 1
    try:
        header = next(reader, None)
        if header is None:
            return
        names = _csv_header(header, path)
        while True:
            # A record may span lines (quoted newlines): it is reported at its
            # first line, where the user has to look.
            start = reader.line_num + 1
            row = next(reader, None)
            if row is None:
                return
            if not row:
                continue  # a blank line
            if len(row) > len(names):
                message = f"row has more cells than the header ({len(row)} cells, header has {len(names)})"
                yield start, RecordError("wrong type", message)
                continue
            record = {name: (cell if cell != "" else None) for name, cell in zip(names, row, strict=False) if name}
            nul = next((name for name, cell in record.items() if cell and "\x00" in cell), None)
            if nul is not None:
                message = f"{nul} holds a NUL character (is this a binary or UTF-16 file?)"
                yield start, RecordError("NUL character", message)
                continue
            yield start, record
    except csv.Error as exc:
        raise CorpusError(_csv_error(path, start, reader.line_num, exc)) from None


def _csv_header(header: list[str], path: Path) -> list[str]:
    names = [name.strip() for name in header]
    if "id" not in names:
        raise CorpusError(f"{path}:1: the CSV header must name an 'id' column, got {names!r}")
    for name in names:
        if name and names.count(name) > 1:
            raise CorpusError(f"{path}:1: the CSV header names {name!r} twice")
    return names


def _csv_error(path: Path, start: int, stopped: int, exc: csv.Error) -> str:
    # A syntax error leaves the parser inside a record: what follows cannot be
    # trusted, so the read stops even with on_error="skip".
    text = str(exc)
    if text.startswith("field larger than field limit"):
        return (
            f"{path}:{start}: malformed CSV: a field of the record starting on this line is over "
            f"{MAX_FIELD_CHARS + 1} characters (a quote never closed?); the parser stopped at line {stopped}"
        )
    if text == "unexpected end of data":
        return (
            f"{path}:{start}: malformed CSV: the record starting on this line ends inside a quoted field "
            f"(a quote is never closed; the parser reached line {stopped}, the end of the file)"
        )
    return (
        f"{path}:{start}: malformed CSV: {text} "
        f"(in the record starting on this line; the parser stopped at line {stopped})"
    )


def _as_object(value: Any) -> dict[str, Any] | RecordError:
    if not isinstance(value, dict):
        return RecordError("wrong type", f"a record must be a JSON object, got {type_name(value)}")
    return value
