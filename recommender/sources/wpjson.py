"""Posts of the WordPress REST API (``wp-json``): saved pages, or fetched from a site.

The location is one of:

* a site URL (``https://site.example/``): the source GETs
  ``/wp-json/wp/v2/posts?per_page=100&page=N&_embed=1`` (``/pages`` for the
  ``page`` post type, ``/<type>`` for others) until a page is empty or the
  ``X-WP-TotalPages`` header's count is reached, through
  :func:`recommender.sources.fetch.fetch` (the source's timeout, size limit
  and user agent). A URL whose path already holds ``/wp-json/`` is taken as
  the collection to read;
* a ``.json`` file holding one such page (a JSON array of post objects), or
  a folder of them (read in natural order: ``page-2`` before ``page-10``).

Categories, tags, the featured image and the author's name come from the
``_embedded`` object (``_embed=1``); pages saved without it give ids,
titles, text, links and dates only. Objects with a ``status`` other than
``publish`` (saved with ``context=edit``) are left out. The id is the post
id, as for the ``wxr`` source, so that both give the same ids for one site.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from ..corpus import RecordError
from ..errors import CorpusError
from .fetch import check_url, fetch
from .wordpress import plain_excerpt, plain_line, strip_markup, wp_date

if TYPE_CHECKING:
    from . import Record, Source

PER_PAGE = 100
# A bound on the pages read from a server that never sends an empty page or a page count.
MAX_PAGES = 10_000
_REST_BASE = {"post": "posts", "page": "pages"}


def records(source: Source) -> Iterator[Record]:
    """The published posts of saved REST API pages or of a site's API."""
    if source.is_url:
        for post_type in source.post_types:
            yield from _fetched(source, post_type)
        return
    check = source.location.lower()
    if "://" in check:
        check_url(source.location)  # names the refused scheme
    path = Path(source.location)
    if path.is_dir():
        files = sorted(path.glob("*.json"), key=_natural)
        if not files:
            raise CorpusError(f"{path}: no .json files of WordPress REST API posts in this directory")
    elif path.is_file():
        files = [path]
    else:
        raise CorpusError(f"{path}: no such file or directory of WordPress REST API posts")
    for file in files:
        label = f"{file.name} " if path.is_dir() else ""
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CorpusError(f"{file}: cannot be read: {exc.strerror or exc}") from None
        yield from _page_records(_posts_of(data, str(file)), label, source.post_types)


def _natural(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _collection_url(location: str, post_type: str) -> str:
    parts = urlsplit(location)
    if "/wp-json/" in parts.path:
        return location
    path = parts.path.rstrip("/") + "/wp-json/wp/v2/" + _REST_BASE.get(post_type, post_type)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _fetched(source: Source, post_type: str) -> Iterator[Record]:
    base = _collection_url(source.location, post_type)
    separator = "&" if "?" in base else "?"
    page, total = 1, None
    while total is None or page <= total:
        if page > MAX_PAGES:
            raise CorpusError(f"{base}: more than {MAX_PAGES} pages of posts; stopped")
        url = f"{base}{separator}{urlencode({'per_page': PER_PAGE, 'page': page, '_embed': 1})}"
        fetched = fetch(
            url,
            timeout=source.timeout,
            max_bytes=source.max_bytes,
            user_agent=source.user_agent,
            accept="application/json",
        )
        posts = _posts_of(fetched.body, url)
        if not posts:
            return
        declared = fetched.headers.get("x-wp-totalpages", "")
        if total is None and declared.isdigit():
            total = int(declared)
        label = f"page {page} " if post_type == "post" else f"{post_type} page {page} "
        yield from _page_records(posts, label, (post_type,))
        page += 1


def _posts_of(data: bytes, name: str) -> list[Any]:
    """The JSON array of one page; CorpusError naming ``name`` for anything else."""
    try:
        value = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{name}: not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{name}:{exc.lineno}: not JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise CorpusError(f"{name}:1: not JSON: nested too deeply") from None
    if isinstance(value, dict) and "code" in value and "message" in value:
        raise CorpusError(f"{name}: the WordPress API answered an error: {value['code']}: {value['message']}")
    if not isinstance(value, list):
        raise CorpusError(
            f"{name}: expected a JSON array of WordPress posts (/wp-json/wp/v2/posts), got {type(value).__name__}"
        )
    return value


def _page_records(posts: list[Any], label: str, post_types: tuple[str, ...]) -> Iterator[Record]:
    for number, post in enumerate(posts, start=1):
        if not isinstance(post, dict):
            yield (
                f"{label}item {number}",
                RecordError("wrong type", f"a post must be an object, got {type(post).__name__}"),
            )
            continue
        where = f"{label}item {number} (post {post.get('id')})"
        if post.get("status", "publish") != "publish" or post.get("type", post_types[0]) not in post_types:
            continue
        try:
            yield where, _record(post)
        except RecordError as exc:
            yield where, exc


def _rendered(post: dict[str, Any], name: str) -> str:
    """``post[name]["rendered"]`` (or a plain string, as some plugins write); '' when absent."""
    value = post.get(name)
    if isinstance(value, dict):
        value = value.get("rendered", value.get("raw"))
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(
            "wrong type", f"{name} must be an object with a 'rendered' string, got {type(value).__name__}"
        )
    return value


def _record(post: dict[str, Any]) -> dict[str, Any]:
    found = post.get("_embedded")
    embedded: dict[str, Any] = found if isinstance(found, dict) else {}
    section: str | None = None
    tags: list[str] = []
    for group in embedded.get("wp:term") or []:
        for term in group if isinstance(group, list) else []:
            if not isinstance(term, dict) or not isinstance(term.get("name"), str):
                continue
            name = plain_line(term["name"]).strip()
            if term.get("taxonomy") == "category" and section is None and name:
                section = name
            elif term.get("taxonomy") == "post_tag" and name:
                tags.append(name)
    excerpt = _rendered(post, "excerpt")
    author = _first(embedded, "author", "name")
    post_id = post.get("id")
    return {
        "id": str(post_id) if isinstance(post_id, int) and not isinstance(post_id, bool) else post_id,
        "title": plain_line(_rendered(post, "title")),
        "body": strip_markup(_rendered(post, "content")),
        "url": post.get("link") or None,
        "excerpt": plain_excerpt(excerpt) if excerpt else None,
        "image": _first(embedded, "wp:featuredmedia", "source_url"),
        "published_at": wp_date(_str(post.get("date_gmt")), _str(post.get("date"))),
        "section": section,
        "tags": tags,
        "author": plain_line(author) if author else None,
    }


def _first(embedded: dict[str, Any], key: str, field: str) -> str | None:
    """``embedded[key][0][field]`` when it is a string (an embedded error object has none)."""
    items = embedded.get(key)
    if isinstance(items, list) and items and isinstance(items[0], dict):
        value = items[0].get(field)
        return value if isinstance(value, str) and value else None
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
