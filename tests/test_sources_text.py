"""Feed, Markdown and HTML sources: real files of each format and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import gzip
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from recommender import CorpusError, Recommender, TrainOptions, read_corpus
from recommender.sources import Source, records_of
from recommender.sources import html as html_source
from recommender.sources.markdown import markdown_text

# --- documents -------------------------------------------------------------

TOPICS = {
    "garden": "Tomatoes need sun, water and compost. Plant the tomato seedlings in the garden after the frost.",
    "garden2": "Water the tomato plants in the garden every morning and feed them compost for more fruit.",
    "rail": "The railway company ordered new electric trains for the commuter line between the two cities.",
    "rail2": "Electric trains on the commuter railway line will run every ten minutes between the cities.",
}

RSS2 = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:media="http://search.yahoo.com/mrss/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>Example news</title><link>https://news.example/</link><language>en-gb</language>
<item><title>Tomatoes in small gardens</title><link>https://news.example/garden/tomatoes</link>
  <guid isPermaLink="false">news-1</guid><pubDate>Tue, 03 Mar 2026 10:00:00 +0100</pubDate>
  <category>Garden</category><category>tomatoes</category><category>Garden</category>
  <dc:creator>Kim Lee</dc:creator><description>Short teaser.</description>
  <content:encoded><![CDATA[<p>{TOPICS["garden"]}</p><script>alert(1)</script>]]></content:encoded>
  <media:thumbnail url="https://news.example/t.jpg"/></item>
<item><title>Watering tomatoes</title><link>https://news.example/garden/water</link>
  <description>&lt;p&gt;{TOPICS["garden2"]}&lt;/p&gt;</description>
  <enclosure url="https://news.example/w.png" type="image/png" length="10"/></item>
<item><title>New electric trains</title><link>https://news.example/rail/trains</link>
  <description>{TOPICS["rail"]}</description></item>
<item><title>Trains every ten minutes</title><guid>rail-2</guid><description>{TOPICS["rail2"]}</description></item>
</channel></rss>
"""

RSS1 = f"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://rdf.example/"><title>RDF news</title><link>https://rdf.example/</link>
  <description>d</description><dc:language>de</dc:language>
  <items><rdf:Seq><rdf:li rdf:resource="https://rdf.example/1"/></rdf:Seq></items></channel>
<item rdf:about="https://rdf.example/1"><title>Electric trains</title><link>https://rdf.example/1</link>
  <description>{TOPICS["rail"]}</description><dc:date>2026-02-03T04:05:06+01:00</dc:date>
  <dc:subject>Rail</dc:subject><dc:creator>Max Muster</dc:creator></item>
</rdf:RDF>
"""

ATOM = f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/" xml:lang="fr">
<title>Atom news</title><id>urn:atom-news</id><updated>2026-01-02T00:00:00Z</updated>
<entry><id>urn:uuid:1</id><title>Les trains</title><link href="https://atom.example/1"/>
  <published>2026-01-02T03:04:05+02:00</published><updated>2026-01-05T00:00:00Z</updated>
  <author><name>Ann Dupont</name></author><category term="Rail"/><category term="trains"/>
  <content type="html">&lt;p&gt;{TOPICS["rail"]}&lt;/p&gt;</content>
  <media:content url="https://atom.example/train.jpg" medium="image"/></entry>
<entry><id>urn:uuid:2</id><title>Encore des trains</title><updated>2026-01-06T00:00:00Z</updated>
  <summary>{TOPICS["rail2"]}</summary></entry>
</feed>
"""

NO_ID = """<rss version="2.0"><channel><title>x</title>
<item><title>Has a link</title><link>https://x.example/1</link><description>Tomato garden</description></item>
<item><title>Nothing to name it by</title><description>Tomato garden compost</description></item>
</channel></rss>"""


def page(title: str, text: str, *, canonical: str | None = None, lang: str = "en", extra_head: str = "") -> str:
    """An HTML page with navigation, a sidebar and a footer around one article."""
    link = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    return f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{title} | Example</title>
{link}{extra_head}</head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/about">About us</a></li><li><a href="/shop">Shop</a></li></ul></nav>
<aside><h3>Newsletter</h3><p>Subscribe to our newsletter for weekly offers.</p></aside>
<article><h1>{title}</h1><p>{text}</p><p>{text} This paragraph repeats the story so it reads as one.</p></article>
<footer><p>Copyright 2026 Example Media. All rights reserved. Privacy policy.</p></footer></body></html>"""


GARDEN_PAGE = page(
    "Tomatoes in small gardens",
    TOPICS["garden"],
    canonical="https://pages.example/garden/tomatoes",
    extra_head=(
        '<meta name="description" content="How to grow tomatoes.">'
        '<meta property="article:published_time" content="2026-03-04T10:00:00Z">'
        '<meta name="author" content="Kim Lee"><meta property="og:image" content="https://pages.example/t.jpg">'
    ),
)
NAV_ONLY = """<html lang="en"><head><title>Index</title></head><body><nav><ul><li><a href="/">Home</a></li>
<li><a href="/a">About us</a></li></ul></nav><footer><p>Copyright 2026 Example.</p></footer></body></html>"""


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def trains(source: Source) -> None:
    """A model fitted on the source answers a non-empty box for a garden article."""
    report = read_corpus(source)
    model = Recommender.fit(report, TrainOptions(min_df=1, n_jobs=1, min_similarity=0.01))
    garden = next(a.id for a in report.articles if a.title.startswith("Tomatoes in small gardens"))
    assert model.related(garden, limit=3).items


# --- feeds -----------------------------------------------------------------


def test_rss2_fields(tmp_path: Path) -> None:
    feed = write(tmp_path / "news.rss", RSS2)
    articles = {a.id: a for a in read_corpus(Source("feed", str(feed))).articles}
    assert list(articles) == [
        "news-1",
        "https://news.example/garden/water",
        "https://news.example/rail/trains",
        "rail-2",
    ]
    first = articles["news-1"]
    assert first.title == "Tomatoes in small gardens"
    assert first.body == TOPICS["garden"]  # content:encoded over the teaser, HTML reduced, script gone
    assert first.url == "https://news.example/garden/tomatoes"
    assert first.published_at == "2026-03-03T09:00:00+00:00"
    assert first.tags == ("Garden", "tomatoes") and first.section == "Garden"
    assert (first.author, first.image, first.language) == ("Kim Lee", "https://news.example/t.jpg", "en-gb")
    assert articles["https://news.example/garden/water"].image == "https://news.example/w.png"
    assert articles["https://news.example/garden/water"].body == TOPICS["garden2"]
    # A permalink guid is the id, not a URL.
    assert articles["rail-2"].url is None


def test_rss1_rdf_fields(tmp_path: Path) -> None:
    feed = write(tmp_path / "news.rdf", RSS1)
    (article,) = read_corpus(Source("feed", str(feed))).articles
    assert (article.id, article.url, article.title) == (
        "https://rdf.example/1",
        "https://rdf.example/1",
        "Electric trains",
    )
    assert (article.published_at, article.section, article.author) == (
        "2026-02-03T03:05:06+00:00",
        "Rail",
        "Max Muster",
    )
    assert article.language == "de"


def test_atom_fields(tmp_path: Path) -> None:
    feed = write(tmp_path / "news.atom", ATOM)
    first, second = read_corpus(Source("feed", str(feed))).articles
    assert (first.id, first.url, first.title, first.body) == (
        "urn:uuid:1",
        "https://atom.example/1",
        "Les trains",
        TOPICS["rail"],
    )
    assert first.published_at == "2026-01-02T01:04:05+00:00"  # published wins over updated
    assert (first.tags, first.section, first.author) == (("Rail", "trains"), "Rail", "Ann Dupont")
    assert (first.image, first.language) == ("https://atom.example/train.jpg", "fr")
    assert (second.id, second.url, second.body) == ("urn:uuid:2", None, TOPICS["rail2"])
    assert second.published_at == "2026-01-06T00:00:00+00:00"


def test_feed_entry_without_link_or_id(tmp_path: Path) -> None:
    feed = write(tmp_path / "noid.xml", NO_ID)
    with pytest.raises(CorpusError) as caught:
        read_corpus(Source("feed", str(feed)))
    assert str(caught.value) == f"{feed} (entry 2): no link or id"
    report = read_corpus(Source("feed", str(feed)), on_error="skip")
    assert [a.id for a in report.articles] == ["https://x.example/1"]
    assert [(p.line, p.kind, p.message) for p in report.skipped] == [("entry 2", "missing id", "no link or id")]


def test_malformed_feed_refused(tmp_path: Path) -> None:
    feed = write(
        tmp_path / "bad.xml", '<?xml version="1.0"?>\n<rss version="2.0"><channel>\n<title>x<</title></channel></rss>'
    )
    with pytest.raises(CorpusError) as caught:
        read_corpus(Source("feed", str(feed)))
    assert str(caught.value) == f"{feed}: not a well-formed feed: line 3, column 9: not well-formed (invalid token)"


def test_truncated_feed_keeps_entries_read(tmp_path: Path) -> None:
    feed = write(tmp_path / "cut.xml", RSS2[: RSS2.index("<item><title>Trains every")] + "<item><title>Cut")
    ids = [a.id for a in read_corpus(Source("feed", str(feed)), on_error="skip").articles]
    assert ids[:3] == ["news-1", "https://news.example/garden/water", "https://news.example/rail/trains"]


def test_not_a_feed_and_missing_file(tmp_path: Path) -> None:
    html = write(tmp_path / "page.xml", "<html><body><p>hello</p></body></html>")
    with pytest.raises(CorpusError) as caught:
        read_corpus(Source("feed", str(html)))
    assert str(caught.value) == f"{html}: not an RSS or Atom feed"
    with pytest.raises(CorpusError) as caught:
        read_corpus(Source("feed", str(tmp_path / "none.xml")))
    assert str(caught.value) == f"{tmp_path / 'none.xml'}: no such feed file: the path does not exist"


def test_feed_trains(tmp_path: Path) -> None:
    trains(Source("feed", str(write(tmp_path / "news.rss", RSS2))))


# --- markdown --------------------------------------------------------------

POST_YAML = f"""---
title: Tomatoes in small gardens
date: 2026-03-04
tags: [tomatoes, compost]
categories: [Garden, Food]
url: /garden/tomatoes/
author: Kim Lee
lang: en
description: How to grow tomatoes.
---

Intro with a [link to seeds](https://seeds.example "Seeds") and ![a photo](tomato.jpg).

## Planting

{TOPICS["garden"]}

```python
plant_tomatoes(count=3)
```
"""

POST_TOML = f"""+++
title = "Watering tomatoes"
date = 2026-03-05T08:30:00Z
tags = ["tomatoes", 2026]
section = "Garden"
id = "water-42"
+++

{TOPICS["garden2"]}
"""

POST_JSON = f"""{{
"title": "Trains every ten minutes", "published_at": "2026-03-07", "permalink": "https://rail.example/2"
}}

{TOPICS["rail2"]}
"""

POST_PLAIN = f"""# New electric trains

{TOPICS["rail"]}
"""

DRAFT = "---\ntitle: Unfinished\ndraft: true\n---\n\nTomatoes someday.\n"


def markdown_tree(root: Path) -> Path:
    write(root / "posts" / "tomatoes.md", POST_YAML)
    write(root / "posts" / "water.markdown", POST_TOML)
    write(root / "rail" / "2026-03-06-trains.md", POST_PLAIN)
    write(root / "rail" / "often.md", POST_JSON)
    write(root / "drafts" / "unfinished.md", DRAFT)
    write(root / "unpublished.md", "---\ntitle: Hidden\npublished: false\n---\nTomatoes.\n")
    write(root / ".obsidian" / "notes.md", "# Hidden folder\n\nNot an article.\n")
    write(root / "README.txt", "not markdown")
    write(root / "notes" / "shell.md", "```sh\n# not the title\n```\n\n# Shell tips for gardeners\n\nTomato compost.\n")
    return root


def test_markdown_fields(tmp_path: Path) -> None:
    root = markdown_tree(tmp_path / "site")
    articles = {a.id: a for a in read_corpus(Source("markdown", str(root))).articles}
    # Drafts, unpublished posts, hidden folders and other suffixes are left out.
    assert sorted(articles) == ["notes/shell", "posts/tomatoes", "rail/2026-03-06-trains", "rail/often", "water-42"]
    # The title is the first heading outside fenced code, and leaves the body.
    shell = articles["notes/shell"]
    assert (shell.title, shell.body) == ("Shell tips for gardeners", "# not the title\nTomato compost.")
    yaml_post = articles["posts/tomatoes"]
    assert (yaml_post.title, yaml_post.published_at, yaml_post.url) == (
        "Tomatoes in small gardens",
        "2026-03-04",
        "/garden/tomatoes/",
    )
    assert (yaml_post.tags, yaml_post.section, yaml_post.author, yaml_post.language) == (
        ("tomatoes", "compost"),
        "Garden",
        "Kim Lee",
        "en",
    )
    assert yaml_post.excerpt == "How to grow tomatoes."
    assert yaml_post.body == (
        f"Intro with a link to seeds and .\n\nPlanting\n\n{TOPICS['garden']}\nplant_tomatoes(count=3)"
    )
    toml_post = articles["water-42"]
    assert (toml_post.title, toml_post.published_at, toml_post.section) == (
        "Watering tomatoes",
        "2026-03-05T08:30:00+00:00",
        "Garden",
    )
    assert toml_post.tags == ("tomatoes", "2026")  # a number in a list of tags is a tag
    plain = articles["rail/2026-03-06-trains"]
    assert (plain.title, plain.body, plain.published_at) == ("New electric trains", TOPICS["rail"], "2026-03-06")
    assert articles["rail/often"].url == "https://rail.example/2"


def test_markdown_text() -> None:
    source = """Setext title
============

> A *quoted* line with **bold**, _emphasis_, ~~gone~~ and `code`.

- item one
1. item [two][ref]
* [ ] task

| a | b |
|---|:-:|
| 1 | 2 |

***

snake_case_name stays, 2 * 3 * 4 too. <https://auto.example>
<!-- more -->
[ref]: https://ref.example
~~~
# a comment in code
~~~
"""
    assert markdown_text(source) == (
        "Setext title\n\nA quoted line with bold, emphasis, gone and code.\n\nitem one\nitem two\ntask\n\n"
        "a b\n\n1 2\n\nsnake_case_name stays, 2 * 3 * 4 too. https://auto.example\n# a comment in code"
    )


def test_markdown_front_matter_errors(tmp_path: Path) -> None:
    write(tmp_path / "bad-yaml.md", "---\ntitle: [unclosed\ndate: 2026-01-01\n---\nText.\n")
    write(tmp_path / "bad-toml.md", '+++\ntitle = "x\n+++\nText.\n')
    write(tmp_path / "list.md", "---\n- a\n- b\n---\nText.\n")
    write(tmp_path / "open.md", "---\ntitle: never closed\n\nText.\n")
    write(tmp_path / "latin1.md", "# Caf\xe9\n\nText.\n".encode("latin-1"))
    write(tmp_path / "good.md", "# Tomatoes\n\nTomato garden.\n")
    source = Source("markdown", str(tmp_path))
    with pytest.raises(CorpusError) as caught:
        read_corpus(source)
    assert str(caught.value) == (
        f"{tmp_path} (bad-toml.md): front matter is not valid TOML: Illegal character '\\n' (at line 2, column 11)"
    )
    report = read_corpus(source, on_error="skip")
    assert [a.id for a in report.articles] == ["good"]
    assert [(p.line, p.kind, p.message) for p in report.skipped] == [
        (
            "bad-toml.md",
            "bad front matter",
            "front matter is not valid TOML: Illegal character '\\n' (at line 2, column 11)",
        ),
        (
            "bad-yaml.md",
            "bad front matter",
            "front matter is not valid YAML: did not find expected ',' or ']' (line 3, column 5)",
        ),
        ("latin1.md", "bad encoding", "not UTF-8: byte 0xe9 at line 1, column 6"),
        ("list.md", "bad front matter", "front matter must be a mapping of names to values, got list"),
        ("open.md", "bad front matter", "the YAML front matter opened on line 1 is never closed"),
    ]


def test_markdown_empty_and_missing_folder(tmp_path: Path) -> None:
    write(tmp_path / "notes.txt", "not markdown")
    with pytest.raises(CorpusError) as caught:
        read_corpus(Source("markdown", str(tmp_path)))
    assert str(caught.value) == f"{tmp_path}: no Markdown files (.md, .markdown) in this folder"
    with pytest.raises(CorpusError) as caught:
        read_corpus(Source("markdown", str(tmp_path / "gone")))
    assert str(caught.value) == f"{tmp_path / 'gone'}: no such folder: the path does not exist"


def test_markdown_trains(tmp_path: Path) -> None:
    trains(Source("markdown", str(markdown_tree(tmp_path / "site"))))


# --- html files ------------------------------------------------------------


def html_folder(root: Path) -> Path:
    write(root / "garden" / "tomatoes.html", GARDEN_PAGE)
    write(root / "garden" / "water.htm", page("Watering tomatoes", TOPICS["garden2"], lang="en-GB"))
    write(root / "rail" / "trains.html", page("New electric trains", TOPICS["rail"]))
    write(root / "rail" / "often.html", page("Trains every ten minutes", TOPICS["rail2"]))
    return root


def test_html_folder_fields(tmp_path: Path) -> None:
    root = html_folder(tmp_path / "pages")
    articles = {a.id: a for a in read_corpus(Source("html", str(root))).articles}
    assert sorted(articles) == [
        "garden/water.htm",
        "https://pages.example/garden/tomatoes",
        "rail/often.html",
        "rail/trains.html",
    ]
    garden = articles["https://pages.example/garden/tomatoes"]
    assert garden.title == "Tomatoes in small gardens"
    assert garden.body.startswith(TOPICS["garden"])  # the heading that repeats the title is left out
    for boilerplate in ("About us", "newsletter", "Copyright"):
        assert boilerplate not in garden.body
    assert (garden.url, garden.published_at, garden.author) == (
        "https://pages.example/garden/tomatoes",
        "2026-03-04",
        "Kim Lee",
    )
    assert (garden.excerpt, garden.image, garden.language) == (
        "How to grow tomatoes.",
        "https://pages.example/t.jpg",
        "en",
    )
    water = articles["garden/water.htm"]
    assert (water.url, water.language) == (None, "en-GB")


def test_html_page_without_text(tmp_path: Path) -> None:
    write(tmp_path / "index.html", NAV_ONLY)
    write(tmp_path / "empty.html", "")
    write(tmp_path / "story.html", GARDEN_PAGE)
    source = Source("html", str(tmp_path))
    with pytest.raises(CorpusError) as caught:
        read_corpus(source)
    assert str(caught.value) == f"{tmp_path} (empty.html): no main text found: the page cannot be parsed as HTML"
    report = read_corpus(source, on_error="skip")
    assert [a.id for a in report.articles] == ["https://pages.example/garden/tomatoes"]
    assert [(p.line, p.message) for p in report.skipped] == [
        ("empty.html", "no main text found: the page cannot be parsed as HTML"),
        ("index.html", "no main text found"),
    ]


def test_html_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(CorpusError) as caught:
        read_corpus(Source("html", str(tmp_path)))
    assert str(caught.value) == f"{tmp_path}: no HTML files (.html, .htm) in this folder"


def test_html_trains(tmp_path: Path) -> None:
    trains(Source("html", str(html_folder(tmp_path / "pages"))))


# --- URLs: a real server on 127.0.0.1 ---------------------------------------

SLOW_SECONDS = 1.5


class Site(ThreadingHTTPServer):
    daemon_threads = True
    pages: dict[str, tuple[int, str, bytes]]


class Handler(BaseHTTPRequestHandler):
    server: Site

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(SLOW_SECONDS)
        status, content_type, body = self.server.pages.get(self.path, (404, "text/plain", b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up (timeout test)
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def sitemap(urls: list[str], tag: str = "url") -> bytes:
    root = "urlset" if tag == "url" else "sitemapindex"
    items = "".join(f"<{tag}><loc>{u}</loc></{tag}>" for u in urls)
    return f'<?xml version="1.0"?><{root} xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{items}</{root}>'.encode()


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = Site(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    html = "text/html; charset=utf-8"
    server.pages = {
        "/feed.xml": (200, "application/rss+xml", RSS2.encode()),
        "/slow": (200, "application/rss+xml", RSS2.encode()),
        "/big.xml": (200, "application/rss+xml", RSS2.encode() + b"<!--" + b" " * 5000 + b"-->"),
        "/p/garden": (200, html, GARDEN_PAGE.encode()),
        "/p/water": (200, html, page("Watering tomatoes", TOPICS["garden2"]).encode()),
        "/p/trains": (200, html, page("New electric trains", TOPICS["rail"]).encode()),
        "/p/often": (200, html, page("Trains every ten minutes", TOPICS["rail2"]).encode()),
        "/sitemap-a.xml": (200, "application/xml", sitemap([f"{base}/p/garden", f"{base}/p/water", f"{base}/p/gone"])),
        "/sitemap-b.xml.gz": (
            200,
            "application/gzip",
            gzip.compress(sitemap([f"{base}/p/trains", f"{base}/p/often", f"{base}/p/garden", f"{base}/p/water"])),
        ),
        "/sitemap.xml": (
            200,
            "application/xml",
            sitemap([f"{base}/sitemap-a.xml", f"{base}/sitemap-b.xml.gz", f"{base}/sitemap-gone.xml"], "sitemap"),
        ),
        "/broken-sitemap.xml": (200, "application/xml", b"<urlset><url><loc>x</loc></urlset>"),
        "/entity-sitemap.xml": (
            200,
            "application/xml",
            b'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY secret SYSTEM "file:///etc/hostname">]>'
            b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>&secret;</loc></url></urlset>',
        ),
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_feed_url(site: str) -> None:
    articles = read_corpus(Source("feed", f"{site}/feed.xml")).articles
    assert [a.id for a in articles][:2] == ["news-1", "https://news.example/garden/water"]
    trains(Source("feed", f"{site}/feed.xml"))


@pytest.mark.parametrize(
    ("path", "options", "message"),
    [
        ("/missing.xml", {}, "{url}: HTTP 404 Not Found"),
        ("/slow", {"timeout": 0.3}, "{url}: no answer within 0.3 s"),
        ("/big.xml", {"max_bytes": 4000}, "{url}: the document is {size} bytes, over the limit of 4000"),
    ],
)
def test_feed_url_failures(site: str, path: str, options: dict, message: str) -> None:
    url = f"{site}{path}"
    with pytest.raises(CorpusError) as caught:
        read_corpus(Source("feed", url, **options))
    size = len(RSS2.encode()) + 5007
    assert str(caught.value) == message.format(url=url, size=size)


@pytest.mark.parametrize("kind", ["feed", "html"])
@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/feed.xml"])
def test_other_schemes_refused(kind: str, url: str) -> None:
    with pytest.raises(CorpusError) as caught:
        list(records_of(Source(kind, url)))
    assert str(caught.value) == f"{url}: only http and https URLs can be fetched"


def test_sitemap_index(site: str) -> None:
    source = Source("html", f"{site}/sitemap.xml")
    with pytest.raises(CorpusError) as caught:
        read_corpus(source)
    assert str(caught.value) == f"{site}/sitemap.xml ({site}/sitemap-gone.xml): HTTP 404 Not Found"
    report = read_corpus(source, on_error="skip")
    # Pages in sitemap order, each once; the canonical URL names the page that has one.
    assert [a.id for a in report.articles] == [
        "https://pages.example/garden/tomatoes",
        f"{site}/p/water",
        f"{site}/p/trains",
        f"{site}/p/often",
    ]
    assert report.articles[1].url == f"{site}/p/water"
    assert [(p.line, p.kind, p.message) for p in report.skipped] == [
        (f"{site}/sitemap-gone.xml", "bad sitemap", "HTTP 404 Not Found"),
        (f"{site}/p/gone", "fetch failed", "HTTP 404 Not Found"),
    ]


def test_sitemap_trains(site: str) -> None:
    source = Source("html", f"{site}/sitemap-b.xml.gz")
    report = read_corpus(source)
    assert len(report.articles) == 4
    trains(source)


def test_sitemap_page_limit(site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(html_source, "MAX_PAGES", 2)
    source = Source("html", f"{site}/sitemap-b.xml.gz")
    with pytest.raises(CorpusError) as caught:
        read_corpus(source)
    assert (
        str(caught.value) == f"{site}/sitemap-b.xml.gz (sitemap): the sitemap lists 4 pages: only the first 2 are read"
    )
    report = read_corpus(source, on_error="skip")
    assert [a.id for a in report.articles] == [f"{site}/p/trains", f"{site}/p/often"]


def test_sitemap_bad_xml_and_entities(site: str) -> None:
    with pytest.raises(CorpusError) as caught:
        read_corpus(Source("html", f"{site}/broken-sitemap.xml"))
    assert str(caught.value).startswith(f"{site}/broken-sitemap.xml: not a well-formed sitemap: ")
    # The external entity is not resolved: the <loc> stays empty and no page is read.
    raw = list(records_of(Source("html", f"{site}/entity-sitemap.xml")))
    assert raw == []
    with pytest.raises(CorpusError) as caught:
        read_corpus(Source("html", f"{site}/feed.xml"))
    assert str(caught.value) == f"{site}/feed.xml: not a sitemap: the root element is 'rss'"


def test_sniffed_paths(tmp_path: Path) -> None:
    """A path alone finds these kinds: a feed by its root element, a folder by the files it holds."""
    feed = write(tmp_path / "news.xml", ATOM)
    site = markdown_tree(tmp_path / "site")
    pages = html_folder(tmp_path / "pages")
    report = read_corpus([feed, site, pages])
    assert len(report.articles) == 2 + 5 + 4
