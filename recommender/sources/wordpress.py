"""What the two WordPress sources (``wxr`` and ``wp-json``) share: markup that is not text, and dates.

WordPress stores posts as HTML with two kinds of markup the HTML reducer of
:mod:`recommender.text` does not know: block comments (``<!-- wp:paragraph
-->``) and shortcodes (``[gallery ids="1,2"]``, ``[caption]...[/caption]``).
Both are removed here before the corpus reader reduces the HTML to text.

Square brackets are also ordinary punctuation ("coracles [simple boat]",
"[sic]"), so a bracket counts as a shortcode only when its name is one of
WordPress's own, when a closing ``[/name]`` follows somewhere in the text,
when it has attributes (``name="value"``) or when it closes itself
(``[name /]``). ``[[name]]`` is WordPress's escape for a literal
``[name]`` and stays as that text.
"""

from __future__ import annotations

import html
import re

from ..text import html_to_text, looks_like_html

# WordPress's built-in shortcodes (wp-includes/media.php and class-wp-embed.php).
CORE_SHORTCODES = frozenset({"caption", "wp_caption", "gallery", "playlist", "audio", "video", "embed"})
# Enclosing shortcodes whose content is a media URL or a fallback, never article text.
_MEDIA_ENCLOSURE = re.compile(r"\[(audio|video|embed|playlist)\b[^\]]*\].*?\[/\1\]", re.DOTALL | re.IGNORECASE)
_TOKEN = re.compile(
    r"\[\[(?P<escaped>[^\[\]]*)\]\]"  # [[name]]: a literal [name]
    r"|\[(?P<close>/)?(?P<name>[A-Za-z][\w-]*)(?P<attrs>(?:[\s/][^\[\]]*)?)\]"
)
_CLOSING = re.compile(r"\[/([A-Za-z][\w-]*)\]")
_CAPTION_ATTR = re.compile(r"""\bcaption\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
ZERO_DATE = "0000-00-00 00:00:00"


def strip_markup(content: str) -> str:
    """``content`` without block comments and shortcodes; a caption's text is kept.

    The text inside an enclosing shortcode stays (``[caption]<img> A
    boat[/caption]`` keeps "A boat", as does a page builder's
    ``[row]...[/row]``), except inside media shortcodes (``[audio]``,
    ``[video]``, ``[embed]``, ``[playlist]``) whose content is a URL. The
    old-style caption attribute (``[caption caption="A boat"]``) is kept as
    text too.
    """
    if "<!--" in content:
        content = _COMMENT.sub("\n", content)
    if "[" not in content:
        return content
    content = _MEDIA_ENCLOSURE.sub(" ", content)
    closed = set(_CLOSING.findall(content))

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped") is not None:
            return f"[{match.group('escaped')}]"
        name, attrs = match.group("name"), match.group("attrs")
        if match.group("close"):
            return " "
        if not (name.lower() in CORE_SHORTCODES or name in closed or "=" in attrs or attrs.rstrip().endswith("/")):
            return match.group(0)  # ordinary bracketed text
        if name.lower() in ("caption", "wp_caption"):
            found = _CAPTION_ATTR.search(attrs)
            if found:
                return f" {found.group(1) if found.group(1) is not None else found.group(2)} "
        return " "

    return _TOKEN.sub(replace, content)


def plain_line(value: str) -> str:
    """A title or a term name as plain text: tags removed, entities decoded (``&#8217;`` -> ``'``)."""
    if looks_like_html(value):
        return html_to_text(value)
    return html.unescape(value) if "&" in value else value


def plain_excerpt(value: str) -> str | None:
    """An excerpt as plain text without shortcodes; None when empty (the reader then makes one)."""
    text = strip_markup(value)
    text = html_to_text(text) if looks_like_html(text) else html.unescape(text)
    return text.strip() or None


def wp_date(gmt: str | None, local: str | None) -> str | None:
    """The publication time as ISO 8601: the GMT one with ``Z``, else the site's local time (no zone).

    WordPress writes ``0000-00-00 00:00:00`` (WXR) or null (REST API) for a
    GMT time it never set (drafts, some imports). A value of another shape
    is passed on unchanged, so that the corpus reader reports it as a bad date.
    """
    for value, zone in ((gmt, "Z"), (local, "")):
        value = (value or "").strip()
        if value and value != ZERO_DATE:
            text = value.replace(" ", "T", 1)
            return text + zone if len(text) == 19 else text
    return None
