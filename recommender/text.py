"""Text clean-up shared by the corpus reader, the model and the widget."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

# Known tag names only: plain text such as "<alice@example.com>" or "a<b>c"
# must not be taken for HTML and lose words.
_TAG_HINT = re.compile(
    r"<!--|</?(?:p|div|br|hr|a|span|img|h[1-6]|ul|ol|li|dl|dt|dd|table|thead|tbody|tr|td|th|script|style|"
    r"b|i|u|em|strong|small|sub|sup|blockquote|q|cite|html|body|head|meta|link|title|figure|figcaption|"
    r"section|article|aside|header|footer|nav|main|iframe|noscript|template|svg|pre|code|font|center)\b[^>]*>",
    re.IGNORECASE,
)
# Elements whose content is never article text.
_DROP = frozenset({"script", "style", "noscript", "template", "head", "svg", "iframe"})
# Elements that end a block of text: they become paragraph breaks.
_BLOCK = frozenset(
    {
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "table",
        "section",
        "article",
        "blockquote",
        "pre",
        "hr",
        "header",
        "footer",
        "figure",
        "figcaption",
        "dd",
        "dt",
    }
)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP:
            self._skip_depth += 1
        elif tag in _BLOCK:
            self.parts.append("\n\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)

    def parse_marked_section(self, i: int, report: bool = True) -> int:
        # The standard parser raises AssertionError on a marked section it
        # cannot name ("<![ odd [ x ]]>"); such a section is skipped to its
        # closing '>' like any other markup, instead of failing the article.
        try:
            return super().parse_marked_section(i, report)
        except AssertionError:
            end = self.rawdata.find(">", i + 3)
            return -1 if end < 0 else end + 1


def looks_like_html(text: str) -> bool:
    """True when ``text`` holds at least one HTML tag."""
    return bool(_TAG_HINT.search(text))


def html_to_text(text: str) -> str:
    """Reduce HTML to plain text: tags, scripts and styles removed, entities decoded."""
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    return normalize_space("".join(parser.parts))


def normalize_space(text: str) -> str:
    """Collapse runs of spaces, keep paragraph breaks as one blank line."""
    # str.split() folds every kind of Unicode space at C speed; regular
    # expressions over the whole text cost several times more.
    text = "\n".join(" ".join(line.split()) for line in text.replace("\r\n", "\n").split("\n"))
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip()


def clean_text(text: str) -> str:
    """Plain text from a field that may hold HTML or plain text.

    Plain text keeps its own spacing (only entities are decoded and the ends
    trimmed): the tokenizer, the excerpt and the boilerplate finder all fold
    spaces themselves, and re-spacing every line of a large corpus costs
    more than reading it.
    """
    if looks_like_html(text):
        return html_to_text(text)
    if "&" in text:
        text = html.unescape(text)
    return text.strip()


def clean_line(text: str) -> str:
    """A title-like field: entities decoded, whitespace folded, tags kept as text.

    Titles and excerpts are shown as text, so a literal ``<b>`` in one stays
    visible (and is escaped on output) instead of being silently removed.
    """
    if "&" in text:
        text = html.unescape(text)
    return " ".join(text.split())


# What html.unescape takes for a character reference: '&' and a number, or a
# name (ended by a space, '<', '&', '#', ';' or 32 characters, with an optional ';').
_REFERENCE = re.compile(r"&(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")


def _protect_references(text: str) -> str:
    """``text`` with '&amp;' for every '&' that html.unescape would decode (and no other).

    Only the ampersands that start a reference are escaped, so a cleaned field
    ("AT&T", "R&D") stays as long as it was.
    """
    if "&" not in text:
        return text
    return _REFERENCE.sub(lambda m: "&amp;" + m[0][1:] if html.unescape(m[0]) != m[0] else m[0], text)


def escape_line(text: str) -> str:
    """The inverse of :func:`clean_line` on its results: ``clean_line(escape_line(t)) == t``."""
    return _protect_references(text)


def escape_text(text: str) -> str:
    """The inverse of :func:`clean_text` on its results: ``clean_text(escape_text(t)) == t``.

    Text that would be taken for HTML gets its '<' as '&lt;': read back, it is
    plain text whose references are decoded, which gives ``t`` again.
    """
    text = _protect_references(text)
    if "<" in text and looks_like_html(text):
        text = text.replace("<", "&lt;")
    return text


def make_excerpt(text: str, max_chars: int = 160) -> str:
    """The start of ``text``, at most ``max_chars`` long, cut at a word boundary.

    An ellipsis marks a cut; text that fits is returned whole.
    """
    # Fold the spaces of a prefix only: a long body is cut anyway, and folding
    # the whole of it was a third of the time spent reading a corpus.
    window = max_chars * 4
    flat = " ".join(text[:window].split())
    if len(flat) <= max_chars and len(text) > window:
        flat = " ".join(text.split())
    if len(flat) <= max_chars:
        return flat
    cut = flat[: max_chars - 1]
    space = cut.rfind(" ")
    if space > max_chars // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-\u2013\u2014") + "\u2026"
