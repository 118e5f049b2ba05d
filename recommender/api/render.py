"""Response bodies built from stored bytes: JSON lists and the HTML widget fragment."""

from __future__ import annotations

import html
import json
import unicodedata
from typing import Any

from ..recommend import Recommender, RelatedResult
from ..text import make_excerpt

WIDGET_EXCERPT_CHARS = 100


def related_json(rec: Recommender, result: RelatedResult) -> bytes:
    """The JSON body of a related list, assembled from each article's stored JSON.

    The stored metadata line is already a JSON object; only the score is
    appended, so no article is parsed or re-serialised on this path.
    """
    parts = [
        b'{"model_version":"',
        result.model_version.encode(),
        b'"',
        b',"id":',
        json.dumps(result.source_id).encode(),
        b',"collapsed":',
        str(result.collapsed).encode(),
        b',"items":[',
    ]
    metadata = rec.metadata_bytes
    items = []
    for item in result.items:
        body = metadata(item.index)[:-1] + b',"score":' + str(round(item.score, 6)).encode()
        if item.why is not None or item.fallback:
            body += b"," + json.dumps(item.extra(), ensure_ascii=False, separators=(",", ":")).encode()[1:-1]
        items.append(body + b"}")
    parts.append(b",".join(items))
    parts.append(b"]}")
    return b"".join(parts)


def safe_url(value: Any) -> str | None:
    """``value`` if it is an http(s) URL or a path on this site, else None.

    Browsers drop control characters (TAB, CR, LF...) from URLs and read a
    backslash as a slash, so ``/\\evil.example`` and ``/<TAB>/evil.example``
    open ``//evil.example``, another site: a URL with either is refused, and
    a path must not start with two slashes in any spelling.
    """
    if not isinstance(value, str):
        return None
    url = value.strip(" ")
    if not url or "\\" in url or any(unicodedata.category(char) == "Cc" for char in url):
        return None
    if url.lower().startswith(("http://", "https://")):
        return url
    if url.startswith("/") and not url.startswith("//"):
        return url
    return None


def related_html(items: list[dict[str, Any]]) -> str:
    """The "You May Also Like" box as an HTML fragment; every field escaped."""
    if not items:
        return '<aside class="yml-box yml-empty"></aside>'
    rows = []
    for item in items:
        title = html.escape(str(item.get("title") or item.get("id") or ""), quote=True)
        url = safe_url(item.get("url"))
        image = safe_url(item.get("image"))
        excerpt = html.escape(make_excerpt(str(item.get("excerpt") or ""), WIDGET_EXCERPT_CHARS), quote=True)
        link_open = f'<a class="yml-link" href="{html.escape(url, quote=True)}">' if url else '<span class="yml-link">'
        link_close = "</a>" if url else "</span>"
        img = (
            f'<img class="yml-image" src="{html.escape(image, quote=True)}" alt="" loading="lazy" '
            f'width="120" height="68">'
            if image
            else ""
        )
        rows.append(
            f'<li class="yml-item">{img}<div class="yml-text">{link_open}'
            f'<span class="yml-title">{title}</span>{link_close}'
            f'<p class="yml-excerpt">{excerpt}</p></div></li>'
        )
    return (
        f'<aside class="yml-box"><style>{BOX_CSS}</style><h2 class="yml-heading">You May Also Like</h2>'
        f'<ul class="yml-list">{"".join(rows)}</ul></aside>'
    )


BOX_CSS = (
    ".yml-box{font-family:system-ui,sans-serif;border-top:3px solid #222;margin:2em 0;padding-top:.5em;max-width:46em}"
    ".yml-heading{font-size:1.1em;margin:.2em 0 .8em;text-transform:uppercase;letter-spacing:.05em}"
    ".yml-list{list-style:none;margin:0;padding:0}"
    ".yml-item{display:flex;gap:.8em;margin:0 0 1em}"
    ".yml-image{width:120px;height:68px;object-fit:cover;flex:none;background:#eee}"
    ".yml-link{color:#0b4f8a;text-decoration:none;font-weight:600}"
    ".yml-link:hover{text-decoration:underline}"
    ".yml-excerpt{margin:.3em 0 0;color:#444;font-size:.92em;line-height:1.35}"
)
