"""RSS (0.9x, 1.0, 2.0) and Atom feeds, from a file or an http(s) URL.

A URL is fetched with :func:`recommender.sources.fetch.fetch` under the
source's timeout, size limit and user agent; the bytes (of the URL or the
file) are handed to feedparser as a stream, so feedparser never opens a URL
or a path itself. Each entry becomes one record, at position ``"entry N"``
(counted from 1 in document order):

- ``id``: the entry's id (Atom ``<id>``, RSS ``<guid>``), else its link; an
  entry with neither is a :class:`~recommender.corpus.RecordError`
  ``"no link or id"``.
- ``title``; ``body``: the first ``<content>`` (``content:encoded``) value,
  else the summary (``<description>``), as HTML that the corpus reader
  reduces to text; the excerpt is left to the reader (derived from the body).
- ``url``: the link when it is an http(s) URL; ``author``: the author's name.
- ``published_at``: the published date, else the updated one, in UTC.
- ``tags``: every category term (RSS ``<category>``, Atom ``<category
  term>``, ``dc:subject``), in order and without repeats; ``section``: the
  first of them. RSS has no other place for a section, and news feeds put
  their section first (WordPress feeds list the categories before the tags).
- ``image``: ``media:thumbnail``, else ``media:content`` of medium or type
  image, else an enclosure of an image type.
- ``language``: the entry's ``xml:lang``, else the feed's language.

A feed that is not well formed (feedparser's ``bozo``) is refused with the
parser's reason when no entry could be read; when some entries were read
(the lenient parser recovers up to the error) they are kept, since the error
usually sits at the end of a truncated document. A document that is no feed
at all is refused.
"""

from __future__ import annotations

import calendar
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..corpus import RecordError
from ..errors import CorpusError
from .fetch import fetch

if TYPE_CHECKING:
    from . import Record, Source

ACCEPT = "application/rss+xml, application/atom+xml, application/rdf+xml, application/xml;q=0.9, */*;q=0.8"


def records(source: Source) -> Iterator[Record]:
    """The entries of one feed, as raw corpus records."""
    import feedparser

    body, headers = _read(source)
    parsed = feedparser.parse(io.BytesIO(body), response_headers=headers)
    entries = parsed.get("entries") or []
    if not entries:
        if parsed.get("bozo"):
            raise CorpusError(f"{source.location}: not a well-formed feed: {_reason(parsed.get('bozo_exception'))}")
        if not parsed.get("version"):
            raise CorpusError(f"{source.location}: not an RSS or Atom feed")
    language = parsed.get("feed", {}).get("language") or None
    for number, entry in enumerate(entries, start=1):
        yield f"entry {number}", _record(entry, language)


def _read(source: Source) -> tuple[bytes, dict[str, str]]:
    """The feed's bytes and the response headers feedparser uses (base URL, charset)."""
    if "://" in source.location:
        # Any scheme: fetch refuses all but http(s) with a message naming the URL.
        got = fetch(
            source.location,
            timeout=source.timeout,
            max_bytes=source.max_bytes,
            user_agent=source.user_agent,
            accept=ACCEPT,
        )
        headers = {"content-location": got.url}
        if "content-type" in got.headers:
            headers["content-type"] = got.headers["content-type"]
        return got.body, headers
    path = Path(source.location)
    if path.is_dir():
        raise CorpusError(f"{path} is a directory: a feed source is one file or URL")
    try:
        return path.read_bytes(), {}
    except FileNotFoundError:
        raise CorpusError(f"{path}: no such feed file: the path does not exist") from None
    except OSError as exc:
        raise CorpusError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def _reason(exc: Any) -> str:
    """The parser's reason, with the line and column of an XML error (SAX names no file)."""
    if hasattr(exc, "getLineNumber"):
        return f"line {exc.getLineNumber()}, column {exc.getColumnNumber()}: {exc.getMessage()}"
    return str(exc)


def _record(entry: Any, feed_language: str | None) -> dict[str, Any] | RecordError:
    link = entry.get("link") or None
    entry_id = entry.get("id") or link
    if link and not link.lower().startswith(("http://", "https://")):
        # feedparser copies a permalink guid into the link: "abc" is an id, not a URL.
        link = None
    if not entry_id:
        return RecordError("missing id", "no link or id")
    content = entry.get("content") or []
    body = content[0].get("value") if content else entry.get("summary")
    tags = _tags(entry)
    detail = (content[0] if content else None) or entry.get("title_detail") or {}
    author = (entry.get("author_detail") or {}).get("name") or entry.get("author") or None
    return {
        "id": entry_id,
        "title": entry.get("title") or None,
        "body": body or None,
        "url": link,
        "published_at": _date(entry.get("published_parsed") or entry.get("updated_parsed")),
        "section": tags[0] if tags else None,
        "tags": tags,
        "author": author,
        "image": _image(entry),
        "language": detail.get("language") or feed_language,
    }


def _tags(entry: Any) -> list[str]:
    seen: dict[str, None] = {}
    for tag in entry.get("tags") or []:
        term = (tag.get("term") or tag.get("label") or "").strip()
        if term:
            seen.setdefault(term, None)
    return list(seen)


def _date(parsed: time.struct_time | None) -> str | None:
    """feedparser's dates are UTC struct_times: an ISO 8601 UTC datetime."""
    if parsed is None:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC).isoformat()


def _image(entry: Any) -> str | None:
    for thumb in entry.get("media_thumbnail") or []:
        if thumb.get("url"):
            return str(thumb["url"])
    for media in entry.get("media_content") or []:
        if media.get("url") and (media.get("medium") == "image" or (media.get("type") or "").startswith("image/")):
            return str(media["url"])
    for enclosure in entry.get("enclosures") or []:
        if enclosure.get("href") and (enclosure.get("type") or "").startswith("image/"):
            return str(enclosure["href"])
    return None
