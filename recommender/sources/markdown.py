"""A folder (read recursively) of Markdown files with YAML, TOML or JSON front matter.

Files ending in ``.md`` or ``.markdown`` are read in sorted path order;
files and folders whose name starts with a dot (``.git``, ``.obsidian``) are
left out. Front matter opens the file: ``---`` YAML, ``+++`` TOML (read with
the standard library's ``tomllib``: python-frontmatter's own TOML handler
needs the ``toml`` package, which is not installed) or a ``{`` JSON object.
Each file is one record, at the position of its path relative to the folder:

- ``id``: front matter ``id``, else the relative path without its suffix
  (``posts/hello``): stable across runs as long as the file is not moved.
- ``title``: front matter ``title``, else the first ``# heading`` (then left
  out of the body).
- ``published_at``: ``published_at`` or ``date`` (YAML and TOML dates
  become ISO 8601), else a Jekyll file name's ``YYYY-MM-DD-`` prefix.
- ``tags``: ``tags``; ``section``: ``section``, else the first of
  ``categories`` (or ``category``).
- ``url``: ``url``, else ``permalink``. A ``slug`` is not made into a URL: it
  is one path segment whose place in the site's URLs only the site knows.
- ``excerpt``: ``excerpt``, ``description`` or ``summary``; ``author``;
  ``image`` (or the first of ``images``); ``language``: ``lang`` or ``language``.
- ``body``: the Markdown as plain text (:func:`markdown_text`).

Drafts (``draft: true``, or Jekyll's ``published: false``) are left out
without a report: they are not errors, and a site does not publish them.
A file that is not UTF-8, or whose front matter does not parse or is not a
mapping, is a :class:`~recommender.corpus.RecordError` with the parser's
message. A folder without Markdown files is refused.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frontmatter.default_handlers import BaseHandler, JSONHandler, YAMLHandler

from ..corpus import RecordError
from . import folder_files

if TYPE_CHECKING:
    from . import Record, Source

SUFFIXES = (".md", ".markdown")
_JEKYLL_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})-")


def records(source: Source) -> Iterator[Record]:
    """One record per Markdown file of the folder (or the one file) named by the source."""
    root = Path(source.location)
    files, root = folder_files(root, SUFFIXES, "Markdown files")
    for path in files:
        relative = path.relative_to(root).as_posix()
        try:
            record = _record(path, relative)
        except RecordError as exc:
            yield relative, exc
            continue
        if record is not None:
            yield relative, record


def _record(path: Path, relative: str) -> dict[str, Any] | None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecordError("unreadable", f"cannot be read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RecordError(
            "bad encoding", f"not UTF-8: byte 0x{data[exc.start]:02x} at line {line}, column {column}"
        ) from None
    text = text.removeprefix("\ufeff")
    meta, content = front_matter(text)
    if meta.get("draft") is True or meta.get("published") is False:
        return None
    title = _text(meta.get("title"))
    if not title:
        title, content = _take_heading(content)
    published = meta.get("published_at", meta.get("date"))
    if published is None and (match := _JEKYLL_DATE.match(path.name)):
        published = match.group(1)
    categories = _list(meta.get("categories", meta.get("category")))
    images = _list(meta.get("images"))
    return {
        "id": meta.get("id") if meta.get("id") is not None else relative.rsplit(".", 1)[0],
        "title": title,
        "body": markdown_text(content),
        "url": _text(meta.get("url") or meta.get("permalink")),
        "excerpt": _text(meta.get("excerpt") or meta.get("description") or meta.get("summary")),
        "image": _text(meta.get("image")) or (_text(images[0]) if images else None),
        "published_at": _text(published),
        "section": _text(meta.get("section")) or (_text(categories[0]) if categories else None),
        "tags": [_text(t) for t in tags] if isinstance(tags := meta.get("tags"), list) else tags,
        "author": _text(meta.get("author")),
        "language": _text(meta.get("lang") or meta.get("language")),
    }


def _take_heading(content: str) -> tuple[str | None, str]:
    """The first ``# heading`` outside fenced code, and the content without its line."""
    lines = content.split("\n")
    fence: str | None = None
    for number, line in enumerate(lines):
        match = _FENCE.match(line)
        if match:
            marker = match.group(1)
            fence = None if fence is not None and marker.startswith(fence) else fence or marker
        elif fence is None and (heading := _TITLE.match(line)):
            return heading.group(1), "\n".join(lines[:number] + lines[number + 1 :])
    return None, content


class _TomlHandler(BaseHandler):
    """TOML front matter between ``+++`` lines, parsed by the standard library's ``tomllib``."""

    FM_BOUNDARY = re.compile(r"^\+{3,}[ \t]*$", re.MULTILINE)
    START_DELIMITER = END_DELIMITER = "+++"

    def load(self, fm: str, **kwargs: object) -> Any:
        return tomllib.loads(fm)


_HANDLERS: tuple[tuple[str, BaseHandler], ...] = (
    ("YAML", YAMLHandler()),
    ("TOML", _TomlHandler()),
    ("JSON", JSONHandler()),
)


def front_matter(text: str) -> tuple[dict[str, Any], str]:
    """The front matter (a mapping, empty when there is none) and the Markdown after it.

    Raises :class:`RecordError` when the front matter is never closed, does
    not parse, or is not a mapping.
    """
    for name, handler in _HANDLERS:
        if not handler.detect(text):
            continue
        try:
            fm, content = handler.split(text)
        except ValueError:
            raise RecordError("bad front matter", f"the {name} front matter opened on line 1 is never closed") from None
        try:
            meta = handler.load(fm)
        except Exception as exc:  # each parser has its own error class
            raise RecordError("bad front matter", f"front matter is not valid {name}: {_message(exc)}") from None
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise RecordError(
                "bad front matter", f"front matter must be a mapping of names to values, got {type(meta).__name__}"
            )
        return meta, content
    return {}, text


def _message(exc: Exception) -> str:
    """A parser's message on one line; YAML's mark made 1-based and counted from the file's start."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        # The front matter text starts with the rest of the opening "---" line.
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())


def _text(value: Any) -> Any:
    """Scalars as strings (a YAML ``title: 2026`` is text); dates in ISO 8601; anything else unchanged.

    Lists and mappings pass through so that the corpus reader reports the wrong type.
    """
    if isinstance(value, date):  # datetime is a date too
        return value.isoformat()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    return value


def _list(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [v for v in (s.strip() for s in value.split(",")) if v]
    return list(value) if isinstance(value, list) else []


_TITLE = re.compile(r"^#[ \t]+(.+?)[ \t#]*$")
_BLANK_LINES = re.compile(r"\n{3,}")
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"<!--.*?-->", re.DOTALL), ""),  # HTML comments (<!--more-->)
    (re.compile(r"^[ \t]*\[[^\]\n]+\]:[ \t]*\S+.*$", re.MULTILINE), ""),  # link reference definitions
    (re.compile(r"!\[[^\]\n]*\](\([^)\n]*\)|\[[^\]\n]*\])?"), ""),  # images
    (re.compile(r"\[([^\]\n]*)\](\([^)\n]*\)|\[[^\]\n]*\])"), r"\1"),  # links keep their text
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),  # autolinks
    (re.compile(r"^[ \t]*(?:[-*_][ \t]*){3,}$", re.MULTILINE), ""),  # horizontal rules
    (re.compile(r"^[ \t]*(?:=+|-+)[ \t]*$", re.MULTILINE), ""),  # setext heading underlines
    (re.compile(r"^[ \t]*#{1,6}[ \t]+(.*?)[ \t#]*$", re.MULTILINE), r"\1"),  # ATX headings
    (re.compile(r"^[ \t]*(?:>[ \t]?)+", re.MULTILINE), ""),  # block quotes
    (re.compile(r"^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?", re.MULTILINE), ""),  # list markers
    (re.compile(r"^[ \t]*\|?(?:[ \t]*:?-+:?[ \t]*\|)+[ \t]*:?-*:?[ \t]*$", re.MULTILINE), ""),  # table rules
    (re.compile(r"^[ \t]*\|[ \t]*|[ \t]*\|[ \t]*$", re.MULTILINE), ""),  # a table row's outer pipes
    (re.compile(r"[ \t]*\|[ \t]*"), " "),  # table cells
    (re.compile(r"(\*\*|__|\*|~~)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # emphasis, strike-through
    (re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)"), r"\1"),  # _emphasis_ (not snake_case)
    (re.compile(r"`+([^`\n]+)`+"), r"\1"),  # inline code keeps its text
]


def markdown_text(markdown: str) -> str:
    """Markdown reduced to plain text for indexing.

    Links keep their text, images are dropped, headings, lists, quotes and
    tables lose their markers, emphasis its asterisks; fenced code keeps its
    lines (they are words of the article) without the fences. Inline HTML is
    left to the corpus reader, which reduces it to text.
    """
    prose: list[str] = []
    out: list[str] = []
    fence: str | None = None
    for line in markdown.splitlines():
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            out.append(_prose("\n".join(prose)))
            prose = []
        elif fence is not None and match and line.strip().startswith(fence) and not line.strip(fence[0] + " \t"):
            fence = None
        elif fence is not None:
            out.append(line)
        else:
            prose.append(line)
    out.append(_prose("\n".join(prose)))
    text = "\n".join(line.rstrip() for part in out if part for line in part.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def _prose(text: str) -> str:
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text.strip("\n")
