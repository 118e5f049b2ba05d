"""Web pages: a folder of saved ``.html``/``.htm`` files, or a sitemap URL whose pages are fetched.

trafilatura finds each page's main text (navigation, footers and sidebars
left out, in its precision mode, so that a page of links alone is not taken
for an article) and its metadata. One page is one record:

- ``id``: the canonical URL (``<link rel=canonical>``, ``og:url``), else the
  page's URL (sitemap) or its path relative to the folder (files).
- ``title``, ``body`` (the main text), ``excerpt`` (the meta description),
  ``published_at`` (the date trafilatura finds), ``author``, ``image``
  (``og:image``), ``section`` (the first category), ``tags``; ``url``: the
  canonical URL, else the page's URL; ``language``: ``<html lang>``.

A page without main text is a :class:`~recommender.corpus.RecordError`
``"no main text found"``; so is a page that cannot be fetched (its URL is
the position), so that one dead link does not stop the read.

Sitemaps (``<urlset>``, or a ``<sitemapindex>`` whose sitemaps are followed
one level deep; gzip-compressed ones too) are parsed with lxml without
entities, DTDs or network access. Each document fetched obeys the source's
timeout, size limit and user agent, and at most :data:`MAX_PAGES` pages are
read: a sitemap that lists more yields one ``"page limit"`` RecordError
first (so ``on_error=fail`` stops before fetching anything, and ``skip``
reads the first :data:`MAX_PAGES`). A sitemap that cannot be fetched or
parsed stops the read; a child sitemap of an index that cannot is one
RecordError at its URL.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..corpus import RecordError
from ..errors import CorpusError
from . import folder_files
from .fetch import fetch

if TYPE_CHECKING:
    from . import Record, Source

MAX_PAGES = 10_000
SUFFIXES = (".html", ".htm")
_SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def records(source: Source) -> Iterator[Record]:
    """One record per page of the folder, file or sitemap named by the source."""
    if "://" in source.location:
        # Any scheme: fetch refuses all but http(s) with a message naming the URL.
        yield from _sitemap_records(source)
    else:
        yield from _file_records(Path(source.location))


def _file_records(root: Path) -> Iterator[Record]:
    files, root = folder_files(root, SUFFIXES, "HTML files")
    for path in files:
        relative = path.relative_to(root).as_posix()
        try:
            content = path.read_bytes()
        except OSError as exc:
            yield relative, RecordError("unreadable", f"cannot be read: {exc.strerror or exc}")
            continue
        yield relative, page_record(content, fallback_id=relative, url=None)


def _sitemap_records(source: Source) -> Iterator[Record]:
    root = _fetch_xml(source, source.location)
    pages: dict[str, None] = {}
    if root.tag == f"{_SITEMAP_NS}sitemapindex":
        for child in _locs(root, "sitemap"):
            try:
                child_root = _fetch_xml(source, child)
            except CorpusError as exc:
                yield child, RecordError("bad sitemap", _without_url(str(exc), child))
                continue
            if child_root.tag != f"{_SITEMAP_NS}urlset":
                yield child, RecordError("bad sitemap", "not a <urlset> sitemap (indexes are followed one level)")
                continue
            pages.update(dict.fromkeys(_locs(child_root, "url")))
    elif root.tag == f"{_SITEMAP_NS}urlset":
        pages.update(dict.fromkeys(_locs(root, "url")))
    else:
        raise CorpusError(f"{source.location}: not a sitemap: the root element is {root.tag!r}")
    if len(pages) > MAX_PAGES:
        yield (
            "sitemap",
            RecordError("page limit", f"the sitemap lists {len(pages)} pages: only the first {MAX_PAGES} are read"),
        )
    for url in list(pages)[:MAX_PAGES]:
        try:
            got = fetch(
                url,
                timeout=source.timeout,
                max_bytes=source.max_bytes,
                user_agent=source.user_agent,
                accept="text/html, application/xhtml+xml;q=0.9, */*;q=0.5",
            )
        except CorpusError as exc:
            yield url, RecordError("fetch failed", _without_url(str(exc), url))
            continue
        yield url, page_record(got.body, fallback_id=got.url, url=got.url)


def page_record(content: bytes, *, fallback_id: str, url: str | None) -> dict[str, Any] | RecordError:
    """The record of one HTML page (``url`` is where it was fetched from, None for a file)."""
    import trafilatura
    from trafilatura.utils import load_html

    tree = load_html(content)
    if tree is None:
        return RecordError("no text", "no main text found: the page cannot be parsed as HTML")
    language = tree.get("lang") or tree.get("{http://www.w3.org/XML/1998/namespace}lang") or None
    # A Document (a dict only with the deprecated as_dict=True).
    found: Any = trafilatura.bare_extraction(
        tree, url=url, with_metadata=True, include_comments=False, favor_precision=True
    )
    text = (found.text or "").strip() if found is not None else ""
    if found is None or not text:
        return RecordError("no text", "no main text found")
    title = (found.title or "").strip()
    first, _, rest = text.partition("\n")
    if title and first.strip() == title and rest.strip():
        text = rest.strip()  # the page's heading repeats the title, which is weighted on its own
    canonical = found.url if found.url and found.url != url else None
    categories = found.categories or []
    return {
        "id": canonical or fallback_id,
        "title": title or None,
        "body": text,
        "excerpt": found.description or None,
        "url": canonical or url,
        "image": found.image or None,
        "published_at": found.date or None,
        "section": categories[0] if categories else None,
        "tags": list(found.tags or []),
        "author": found.author or None,
        "language": language.strip() if language else None,
    }


def _fetch_xml(source: Source, url: str) -> Any:
    """The root element of the sitemap at ``url``; CorpusError naming it when it cannot be read."""
    from lxml import etree

    got = fetch(
        url,
        timeout=source.timeout,
        max_bytes=source.max_bytes,
        user_agent=source.user_agent,
        accept="application/xml, text/xml;q=0.9, */*;q=0.5",
    )
    body = got.body
    if body[:2] == b"\x1f\x8b":
        body = _gunzip(body, url, source.max_bytes)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        return etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise CorpusError(f"{url}: not a well-formed sitemap: {exc}") from None


def _gunzip(body: bytes, url: str, max_bytes: int) -> bytes:
    """A gzip-compressed sitemap, decompressed under the same size limit."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise CorpusError(f"{url}: corrupt gzip data: {exc}") from None
    if len(data) > max_bytes:
        raise CorpusError(f"{url}: the decompressed sitemap is over the limit of {max_bytes} bytes")
    return data


def _locs(root: Any, element: str) -> list[str]:
    found = root.xpath(f"s:{element}/s:loc/text()", namespaces={"s": _SITEMAP_NS[1:-1]})
    return [text.strip() for text in found if text.strip()]


def _without_url(message: str, url: str) -> str:
    """fetch's message without the leading URL, which the record's position already shows."""
    return message.removeprefix(f"{url}: ")
