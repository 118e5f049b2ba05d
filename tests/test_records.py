"""Article records that round-trip: ``parse_record(article_record(a)) == a`` for every parsed article."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from recommender.corpus import Article, RecordError, article_record, parse_record
from recommender.text import clean_line, clean_text, escape_line, escape_text

from .conftest import TINY


def round_trip(raw: dict[str, Any]) -> Article:
    """Parse ``raw``, store its record as the change log does (JSON text), parse it again: the same article."""
    article = parse_record(raw)
    record = article_record(article)
    assert parse_record(record) == article
    stored = json.loads(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
    assert parse_record(stored) == article
    assert article_record(parse_record(stored)) == record
    return article


@pytest.mark.parametrize("raw", TINY)
def test_the_tiny_corpus_round_trips(raw: dict[str, Any]) -> None:
    round_trip(raw)


@pytest.mark.parametrize(
    "raw",
    [
        # Extra fields of every JSON type, nested.
        {"id": 7, "title": "T", "views": 3, "score": 1.5, "flag": True, "nested": {"a": [1, None, "x"]}, "none": None},
        # Both section and category: the category is an extra field.
        {"id": "a", "title": "T", "section": "World", "category": "news"},
        {"id": "a", "title": "T", "section": "", "category": "news"},
        {"id": "a", "title": "T", "section": "  ", "category": None},
        {"id": "a", "title": "T", "section": None, "category": "Sport"},
        {"id": "a", "title": "T", "category": " Sport "},
        # Derived and explicit excerpts, blank ones.
        {"id": "a", "title": "Title only"},
        {"id": "a", "title": "", "body": "word " * 200},
        {"id": "a", "title": "T", "body": "B", "excerpt": "  An   explicit\nexcerpt  "},
        {"id": "a", "title": "T", "body": "B", "excerpt": "   "},
        # Entities that cleaning decoded, markup that is now text, text that looks like markup.
        {"id": "a", "title": "AT&amp;T &amp;lt;b&amp;gt; R&D", "body": "&amp;lt;p&amp;gt; stays &amp;amp; text"},
        {"id": "a", "title": "x", "body": "&lt;p&gt;Hello&lt;/p&gt; &ampx &#38;#65;"},
        {"id": "a", "title": "x", "body": "<p>Para &lt;div&gt; one</p><p>two &amp;amp;</p><script>x()</script>"},
        {"id": "a", "title": "x", "body": "a<b>c</b> &notin &notit; &#x41 &#65 & ; &"},
        # Unicode everywhere, dates of both kinds, tags as a string and as a list.
        {
            "id": "日本-1",
            "title": "Ünïcödé\u2003title\u00a0with\u200bspaces 🎉",
            "body": "中文正文。Ελληνικά\r\n\r\n\r\nкириллица\u2028line",
            "tags": " b, a ,b,,c ",
            "published_at": "2026-03-01T08:00:00Z",
            "author": " Zoë ",
            "language": " de ",
            "url": " https://example.com/ü?q=1 ",
            "image": "",
        },
        {"id": "a", "title": "T", "tags": ["x", " x", "y,z"], "published_at": "2026-03-01"},
        {"id": "a", "title": "T", "published_at": "2026-03-01T08:00:00.123456+05:30"},
        {"id": "a", "title": "T", "url": "   ", "author": "\t", "published_at": ""},
    ],
)
def test_awkward_records_round_trip(raw: dict[str, Any]) -> None:
    round_trip(raw)


def test_the_record_keeps_the_excerpt_and_a_blank_section_beside_a_category() -> None:
    article = round_trip({"id": "a", "title": "Title", "body": "Body text", "section": "", "category": "c"})
    record = article_record(article)
    assert record["excerpt"] == "Body text"
    assert record["section"] == "" and record["category"] == "c"
    assert article.section is None and article.extra == {"category": "c"}


def test_blank_optional_fields_are_none_and_a_blank_excerpt_is_derived() -> None:
    article = parse_record({"id": "a", "title": "T", "body": "B", "url": " ", "section": " ", "excerpt": " "})
    assert (article.url, article.section, article.excerpt) == (None, None, "B")


def test_escapes_only_what_cleaning_would_decode() -> None:
    assert escape_line("AT&T R&D & co") == "AT&T R&D & co"
    assert escape_line("&lt; &amp &#65") == "&amp;lt; &amp;amp &amp;#65"
    assert escape_text("a <b> c") == "a &lt;b> c"
    assert escape_text("a < b > c") == "a < b > c"


_PIECES = st.sampled_from(
    ["&", "&amp;", "&lt;", "&gt;", "&#65;", "&#x41", "&notin", "&ampx", "<p>", "</p>", "<b>", "<br/>", "<script>",
     "<!-- c -->", " ", "\n", "\r\n", "\t", "\u00a0", "\u2003", "é", "中", "🎉", ";", "#", "x", "Word", "."]
)  # fmt: skip
_TEXT = st.one_of(st.text(max_size=40), st.lists(_PIECES, max_size=30).map("".join))


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_escaping_inverts_cleaning(text: str) -> None:
    line = clean_line(text)
    assert clean_line(escape_line(line)) == line
    body = clean_text(text)
    assert clean_text(escape_text(body)) == body


_OPTIONAL = st.one_of(st.none(), _TEXT)
_EXTRA = st.dictionaries(
    st.sampled_from(["category", "views", "nested", "Title", "ID"]),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
        max_leaves=5,
    ),
)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(st.integers(), st.text(min_size=1, max_size=10)),
    _TEXT,
    _TEXT,
    st.fixed_dictionaries(
        {},
        optional={name: _OPTIONAL for name in ("url", "excerpt", "image", "section", "category", "author", "language")},
    ),
    st.one_of(st.none(), st.lists(_TEXT, max_size=4), _TEXT),
    st.sampled_from([None, "", "2026-01-02", "2026-01-02T03:04:05Z", "1999-12-31T23:59:59.5-07:00"]),
    _EXTRA,
)
def test_every_parsed_article_round_trips(
    article_id: Any,
    title: str,
    body: str,
    optional: dict[str, Any],
    tags: Any,
    published_at: str | None,
    extra: dict[str, Any],
) -> None:
    raw = {**extra, **optional, "id": article_id, "title": title, "body": body, "tags": tags}
    raw["published_at"] = published_at
    try:
        parse_record(raw)
    except RecordError:
        assume(False)
    round_trip(raw)
