"""WordPress eXtended RSS exports (``wxr``): the file Tools > Export writes, optionally gzip-compressed.

The export is read with lxml's ``iterparse`` in constant memory: each
``<item>`` is processed when it ends, then cleared and its preceding siblings
deleted. Entities are never resolved, the network is never used, and a
document with a DOCTYPE is refused (an export has none), so hostile XML can
neither read local files nor expand a billion laughs.

Only published items of the chosen post types (``Source.post_types``,
``post`` by default) become records. The id is ``wp:post_id`` unchanged, also
when pages are read: WordPress numbers posts, pages and attachments in one
sequence, so the ids stay unique and are the ones the site's templates know
(and the ones the ``wp-json`` source gives). A record's position is the line
of its ``<item>``.

The featured image is an attachment item named by the post's
``_thumbnail_id``; attachments often come after their post (WordPress
exports in id order and the image is usually uploaded after the post is
created). Holding posts back until their attachment shows up would keep most
of a large export in memory, so a first pass collects every attachment's id
and URL (a small dict) and the second pass reads the posts. Measured on a
40 MB synthetic export (``benchmarks/bench_sources.py``): the first pass
took 0.40 s of the 1.16 s both take, while training on 200 MB took 58 s,
so it costs a few percent of a training and no memory.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from lxml import etree

from ..errors import CorpusError
from .wordpress import plain_excerpt, plain_line, strip_markup, wp_date

if TYPE_CHECKING:
    from . import Record, Source

_EXPORT_NS = re.compile(r"^https?://wordpress\.org/export/1\.\d+/$")
_WHERE = re.compile(r", line \d+, column \d+$")  # libxml2's own suffix; the position is given our way
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_PROLOG_BYTES = 64 * 1024
_REFUSED = "{path}: refused: the document declares a DOCTYPE (a WordPress export has none)"
_CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
_DC_NS = "http://purl.org/dc/elements/1.1/"


def records(source: Source) -> Iterator[Record]:
    """The published posts (of ``source.post_types``) of a WordPress export, in file order."""
    path = Path(source.location)
    if path.is_dir():
        raise CorpusError(f"{path} is a directory: a wxr source is one WordPress export file (.xml or .xml.gz)")
    if not path.is_file():
        raise CorpusError(f"{path}: no such WordPress export: the path does not exist")
    images = {item_id: url for item_id, url in _attachments(path)}
    wanted = set(source.post_types)
    types: Counter[str] = Counter()
    yielded = 0
    for item, names in _items(path):
        post_type = _text(item, names.wp + "post_type")
        status = _text(item, names.wp + "status")
        if post_type not in wanted or status != "publish":
            types[f"{status or 'no status'} {post_type or 'without type'}"] += 1
            continue
        yielded += 1
        yield item.sourceline or 0, _record(item, names, images)
    if not yielded:
        found = ", ".join(f"{n} {kind}" for kind, n in types.most_common()) or "no items"
        raise CorpusError(
            f"{path}: no published item of type {', '.join(sorted(wanted))} in the WordPress export ({found})"
        )


class _Names:
    """The clark-notation prefixes of the namespaces an export declares (they vary with the WXR version)."""

    def __init__(self, nsmap: dict[str | None, str]) -> None:
        uris = set(nsmap.values())
        wp = next((u for u in uris if _EXPORT_NS.match(u)), None)
        excerpt = next((u for u in uris if u.endswith("/excerpt/") and "wordpress.org/export/" in u), None)
        self.wp = f"{{{wp}}}" if wp else ""
        self.excerpt = f"{{{excerpt}}}encoded" if excerpt else ""
        self.valid = wp is not None
        self.language: str | None = None


def _open(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")  # type: ignore[return-value]


def _items(path: Path) -> Iterator[tuple[Any, _Names]]:
    """Every ``<item>`` of the export, cleared (with what precedes it) once the caller is done with it."""
    names: _Names | None = None
    try:
        with _open(path) as handle:
            # Refused before libxml2 reads the DTD: its declarations are never even parsed.
            head = handle.read(_PROLOG_BYTES)
            end = head.find(b"<rss")
            if _DOCTYPE.search(head, 0, end if end >= 0 else len(head)):
                raise CorpusError(_REFUSED.format(path=path))
            handle.seek(0)
            parser = etree.iterparse(
                handle,
                events=("end",),
                tag="item",
                huge_tree=True,  # one post may hold more than libxml2's default 10 MB of text
                resolve_entities=False,
                no_network=True,
                load_dtd=False,
            )
            for _, item in parser:
                if names is None:
                    names = _check_root(path, item.getroottree())
                yield item, names
                item.clear(keep_tail=True)
                while item.getprevious() is not None:
                    del item.getparent()[0]
            if names is None:
                _check_root(path, parser.root.getroottree())
                raise CorpusError(f"{path}: the WordPress export holds no items")
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (exc.lineno or 0, 0)
        # One line: libxml2 may quote the unfinished text on the next ones.
        message = _WHERE.sub("", (exc.msg or str(exc)).splitlines()[0])
        where = f" at column {column}" if column else ""
        raise CorpusError(f"{path}:{line}: not well-formed XML: {message}{where}") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise CorpusError(f"{path}: cannot be read as a gzip-compressed WordPress export: {exc}") from None
    except OSError as exc:
        raise CorpusError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def _check_root(path: Path, tree: Any) -> _Names:
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise CorpusError(_REFUSED.format(path=path))
    root = tree.getroot()
    tag = etree.QName(root).localname
    if tag != "rss" or etree.QName(root).namespace:
        raise CorpusError(f"{path}: not a WordPress export: the root element is <{tag}>, expected <rss>")
    names = _Names(root.nsmap)
    if not names.valid:
        raise CorpusError(
            f"{path}: not a WordPress export: <rss> does not declare the WordPress export namespace "
            "(https://wordpress.org/export/1.2/); read a feed with --source feed"
        )
    # The site's language (<channel><language>), still in the tree when the first item ends.
    names.language = (root.findtext("channel/language") or "").strip() or None
    return names


def _attachments(path: Path) -> Iterator[tuple[str, str]]:
    """(post id, URL) of every attachment item: the first pass."""
    for item, names in _items(path):
        url = _text(item, names.wp + "attachment_url")
        item_id = _text(item, names.wp + "post_id")
        if url and item_id:
            yield item_id, url


def _text(item: Any, tag: str) -> str | None:
    child = item.find(tag)
    if child is None or child.text is None:
        return None
    return str(child.text).strip()


def _record(item: Any, names: _Names, images: dict[str, str]) -> dict[str, Any]:
    wp = names.wp
    section: str | None = None
    tags: list[str] = []
    thumbnail: str | None = None
    for child in item:
        tag = child.tag
        if tag == "category":
            name = plain_line(child.text or "").strip()
            domain = child.get("domain")
            if domain == "category" and section is None and name:
                section = name
            elif domain == "post_tag" and name:
                tags.append(name)
        elif tag == wp + "postmeta" and _text(child, wp + "meta_key") == "_thumbnail_id":
            thumbnail = _text(child, wp + "meta_value")
    content = item.findtext(f"{{{_CONTENT_NS}}}encoded") or ""
    excerpt = item.findtext(names.excerpt) if names.excerpt else None
    return {
        "id": _text(item, wp + "post_id") or None,
        "title": plain_line(item.findtext("title") or ""),
        "body": strip_markup(content),
        "url": _text(item, "link") or None,
        "excerpt": plain_excerpt(excerpt) if excerpt else None,
        "image": images.get(thumbnail) if thumbnail else None,
        "published_at": wp_date(_text(item, wp + "post_date_gmt"), _text(item, wp + "post_date")),
        "section": section,
        "tags": tags,
        "author": _text(item, f"{{{_DC_NS}}}creator") or None,
        "language": names.language,
    }
