"""The WordPress sources: ``wxr`` (exports) and ``wp-json`` (REST API pages, saved or fetched).

The real export is WordPress's own theme unit test data, read from
``../shared/corpora/sites`` (skipped when absent, failed when CI is set).
The REST API is served by a real HTTP server on 127.0.0.1 started here.
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from recommender import Recommender, TrainOptions
from recommender.corpus import read_corpus
from recommender.errors import CorpusError
from recommender.sources import Source, records_of
from recommender.sources.wordpress import strip_markup, wp_date

from .conftest import SHARED_CORPORA

THEME_TEST = "wordpress-theme-unit-test.xml"


def site_corpus(name: str) -> Path:
    """A site export from ../shared/corpora/sites; skipped when absent, failed when CI is set."""
    path = SHARED_CORPORA / "sites" / name
    if not path.is_file():
        reason = f"{path} is not available (the shared corpora live beside the repository)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}")
        pytest.skip(reason)
    return path


def by_id(source: Source) -> dict[str, Any]:
    return {a.id: a for a in read_corpus(source).articles}


# The real export ---------------------------------------------------------------


def test_wxr_reads_the_56_published_posts_of_the_theme_unit_test() -> None:
    path = site_corpus(THEME_TEST)
    report = read_corpus(Source("wxr", str(path)))
    assert len(report.articles) == 56 and report.skipped == []
    # The export also holds pages, attachments, menu items, a draft and a scheduled post.
    assert "2" not in {a.id for a in report.articles}  # the page "About The Tests"


def test_wxr_resolves_a_featured_image_whose_attachment_comes_after_the_post() -> None:
    articles = by_id(Source("wxr", str(site_corpus(THEME_TEST))))
    # Post 51 (line 1303) names attachment 761, which the export holds further down.
    assert articles["51"].image == "https://wpthemetestdata.files.wordpress.com/2008/06/dsc20050102_192118_51.jpg"
    assert articles["1011"].image == "https://wpthemetestdata.files.wordpress.com/2013/03/featured-image-horizontal.jpg"
    assert articles["358"].image is None
    assert sum(1 for a in articles.values() if a.image) == 6


def test_wxr_fields_categories_tags_author_url_date_language() -> None:
    a = by_id(Source("wxr", str(site_corpus(THEME_TEST))))["1177"]
    assert a.title == "Markup: Image Alignment"
    assert a.section == "Classic"  # the first category
    assert a.tags == ("alignment", "captions", "content περιεχόμενο", "css", "image", "markup")
    assert a.author == "themedemos"
    assert a.url == "https://wpthemetestdata.wordpress.com/2013/01/10/markup-image-alignment/"
    assert a.published_at == "2013-01-11T03:15:40+00:00"  # wp:post_date_gmt, in UTC
    assert a.language == "en"


def test_wxr_bodies_lose_shortcodes_and_block_comments_but_keep_captions_and_brackets() -> None:
    articles = by_id(Source("wxr", str(site_corpus(THEME_TEST))))
    # [caption caption="..."]<img>[/caption]: the attribute's text is the whole body.
    assert articles["568"].body == (
        "Chunk of resinous blackboy husk, Clarkson, Western Australia. This burns like a spinifex log."
    )
    assert articles["1163"].body == "Bell on wharf in San Francisco"  # [caption]<img> text[/caption]
    gallery = articles["555"].body
    assert "[gallery" not in gallery and "One Column\n\nTwo Columns" in gallery
    assert "[audio" not in articles["587"].body and articles["587"].body.endswith("Audio shortcode:")
    assert "wp:" not in articles["51"].body and "<!--" not in articles["51"].body
    # Brackets that are prose stay.
    assert "beaching their coracles [simple boat]. We too" in articles["358"].body


def test_wxr_post_type_page_adds_the_21_pages() -> None:
    articles = by_id(Source("wxr", str(site_corpus(THEME_TEST)), post_types=("post", "page")))
    assert len(articles) == 77
    assert articles["2"].title == "About The Tests"


def test_wxr_trains_a_model_with_related_articles() -> None:
    report = read_corpus(Source("wxr", str(site_corpus(THEME_TEST))))
    rec = Recommender.fit(report, TrainOptions(min_df=1, n_jobs=1))
    result = rec.related("1177", limit=5)
    assert 1 <= len(result.items) <= 5
    assert all(item.id != "1177" for item in result.items)


# The shared helpers ------------------------------------------------------------


def test_strip_markup_rules() -> None:
    text = (
        '<!-- wp:paragraph --><p>A [gallery ids="1,2"] b [caption id="x"]<img src="a.jpg"> Cap[/caption] '
        '[embed]https://v.example/1[/embed] [contact-form-7 id="9"] [toc /] [row]in row[/row] [sic] '
        "[[gallery]]</p><!-- /wp:paragraph -->"
    )
    assert " ".join(strip_markup(text).split()) == '<p>A b <img src="a.jpg"> Cap in row [sic] [gallery]</p>'


def test_wp_date_prefers_gmt_and_falls_back_to_local_time() -> None:
    assert wp_date("2013-01-11 03:15:40", "2013-01-10 19:15:40") == "2013-01-11T03:15:40Z"
    assert wp_date("0000-00-00 00:00:00", "2013-01-10 19:15:40") == "2013-01-10T19:15:40"
    assert wp_date(None, None) is None


# Bad exports ---------------------------------------------------------------------

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
    'xmlns:wp="http://wordpress.org/export/1.2/">\n<channel>\n'
)


def item(post_id: str | None = "7", *, title: str = "A post", body: str = "Some text.", post_type: str = "post") -> str:
    ident = f"<wp:post_id>{post_id}</wp:post_id>\n" if post_id else ""
    return (
        f"<item>\n<title>{title}</title>\n<content:encoded><![CDATA[{body}]]></content:encoded>\n{ident}"
        f"<wp:post_date_gmt>2026-01-02 03:04:05</wp:post_date_gmt>\n"
        f"<wp:status>publish</wp:status>\n<wp:post_type>{post_type}</wp:post_type>\n</item>\n"
    )


def export(tmp_path: Path, text: str, name: str = "export.xml") -> Source:
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return Source("wxr", str(path))


def failure(source: Source) -> str:
    with pytest.raises(CorpusError) as caught:
        read_corpus(source)
    return str(caught.value)


def test_wxr_gzip_export(tmp_path: Path) -> None:
    source = export(tmp_path, HEAD + item("7") + item("8", title="B") + "</channel></rss>", "export.xml.gz")
    assert [(pos, r["id"]) for pos, r in records_of(source)] == [(4, "7"), (12, "8")]
    assert read_corpus(source).articles[0].published_at == "2026-01-02T03:04:05+00:00"


def test_wxr_malformed_xml_names_file_and_line(tmp_path: Path) -> None:
    source = export(tmp_path, HEAD + item("7") + "<item><title>x</titel></item></channel></rss>")
    assert failure(source) == (
        f"{source.location}:12: not well-formed XML: Opening and ending tag mismatch: title line 12 and titel "
        "at column 23"
    )


def test_wxr_truncated_file(tmp_path: Path) -> None:
    text = HEAD + item("7") + item("8", body="Half of this body is lost")
    source = export(tmp_path, text[: text.index("is lost")])  # a download cut in the middle of a post
    assert failure(source) == (f"{source.location}:14: not well-formed XML: CData section not finished at column 45")


def test_wxr_item_without_id_is_a_bad_record_at_its_line(tmp_path: Path) -> None:
    source = export(tmp_path, HEAD + item("7") + item(None) + "</channel></rss>")
    assert failure(source) == f"{source.location}:12: missing id"
    report = read_corpus(source, on_error="skip")
    assert [a.id for a in report.articles] == ["7"]
    assert report.skipped_summary() == "skipped 1 record(s): 1 missing id"


def test_wxr_refuses_xxe_and_billion_laughs(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET", encoding="utf-8")
    xxe = HEAD.replace("<rss", f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>\n<rss', 1)
    source = export(tmp_path, xxe + item("7", title="&xxe;") + "</channel></rss>")
    refusal = f"{source.location}: refused: the document declares a DOCTYPE (a WordPress export has none)"
    assert failure(source) == refusal
    laughs = "".join(f'<!ENTITY l{n} "{f"&l{n - 1};" * 10}">' for n in range(1, 10))
    bomb = HEAD.replace("<rss", f'<!DOCTYPE rss [<!ENTITY l0 "lol">{laughs}]>\n<rss', 1)
    source = export(tmp_path, bomb + item("7", title="&l9;") + "</channel></rss>", "bomb.xml")
    # Refused before any entity is expanded (the message says so; no timing needed).
    assert failure(source) == refusal.replace("export.xml", "bomb.xml")


def test_wxr_empty_export_and_other_xml(tmp_path: Path) -> None:
    source = export(tmp_path, HEAD + "<title>Empty site</title></channel></rss>")
    assert failure(source) == f"{source.location}: the WordPress export holds no items"
    feed = export(tmp_path, '<rss version="2.0"><channel><item><title>x</title></item></channel></rss>', "f.xml")
    assert failure(feed) == (
        f"{feed.location}: not a WordPress export: <rss> does not declare the WordPress export namespace "
        "(https://wordpress.org/export/1.2/); read a feed with --source feed"
    )
    atom = export(tmp_path, '<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title></feed>', "a.xml")
    assert failure(atom) == f"{atom.location}: not a WordPress export: the root element is <feed>, expected <rss>"


def test_wxr_no_post_of_the_chosen_type_says_what_the_export_holds(tmp_path: Path) -> None:
    source = export(tmp_path, HEAD + item("7", post_type="page") + item("8", post_type="page") + "</channel></rss>")
    assert failure(source) == (
        f"{source.location}: no published item of type post in the WordPress export (2 publish page)"
    )
    assert failure(Source("wxr", str(tmp_path / "missing.xml"))) == (
        f"{tmp_path / 'missing.xml'}: no such WordPress export: the path does not exist"
    )


# wp-json ------------------------------------------------------------------------------


def post(post_id: int, title: str, *, with_embed: bool = True) -> dict[str, Any]:
    value: dict[str, Any] = {
        "id": post_id,
        "date": "2026-03-01T09:00:00",
        "date_gmt": "2026-03-01T08:00:00",
        "link": f"https://site.example/?p={post_id}",
        "status": "publish",
        "type": "post",
        "title": {"rendered": title},
        "content": {
            "rendered": f"<!-- wp:paragraph --><p>Body of {post_id} about boats and harbours.</p>"
            '<!-- /wp:paragraph -->[gallery ids="3,4"]'
        },
        "excerpt": {"rendered": f"<p>Excerpt of {post_id} &hellip;</p>\n"},
    }
    if with_embed:
        value["_embedded"] = {
            "author": [{"name": "Ann &amp; Bo"}],
            "wp:featuredmedia": [{"source_url": f"https://site.example/img/{post_id}.jpg?a=1&b=2"}],
            "wp:term": [
                [{"taxonomy": "category", "name": "Sea &amp; Sky"}, {"taxonomy": "category", "name": "Other"}],
                [{"taxonomy": "post_tag", "name": "boats"}, {"taxonomy": "post_tag", "name": "harbours"}],
            ],
        }
    return value


def test_wpjson_files_and_folders(tmp_path: Path) -> None:
    folder = tmp_path / "api"
    folder.mkdir()
    (folder / "page-10.json").write_text(json.dumps([post(3, "Third")]), encoding="utf-8")
    (folder / "page-2.json").write_text(
        json.dumps([post(1, "Hello &#8211; world&#8217;s <em>best</em>"), post(2, "Second", with_embed=False)]),
        encoding="utf-8",
    )
    positions = [pos for pos, _ in records_of(Source("wp-json", str(folder)))]
    assert positions == ["page-2.json item 1 (post 1)", "page-2.json item 2 (post 2)", "page-10.json item 1 (post 3)"]
    articles = by_id(Source("wp-json", str(folder)))
    first = articles["1"]
    assert first.title == "Hello \u2013 world\u2019s best"
    assert first.body == "Body of 1 about boats and harbours."
    assert first.excerpt == "Excerpt of 1 \u2026"
    assert (first.section, first.tags, first.author) == ("Sea & Sky", ("boats", "harbours"), "Ann & Bo")
    assert first.image == "https://site.example/img/1.jpg?a=1&b=2"
    assert first.published_at == "2026-03-01T08:00:00+00:00"
    assert first.url == "https://site.example/?p=1"
    assert (articles["2"].section, articles["2"].tags, articles["2"].image) == (None, (), None)
    single = by_id(Source("wp-json", str(folder / "page-10.json")))
    assert list(single) == ["3"]


def test_wpjson_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"code": "rest_no_route", "message": "No route was found"}', encoding="utf-8")
    assert failure(Source("wp-json", str(bad))) == (
        f"{bad}: the WordPress API answered an error: rest_no_route: No route was found"
    )
    bad.write_text("[1, {", encoding="utf-8")
    assert failure(Source("wp-json", str(bad))) == (
        f"{bad}:1: not JSON: Expecting property name enclosed in double quotes at column 6"
    )
    bad.write_text(json.dumps([post(1, "One"), {"title": {"rendered": "no id"}}, ["x"]]), encoding="utf-8")
    report = read_corpus(Source("wp-json", str(bad)), on_error="skip")
    assert [a.id for a in report.articles] == ["1"]
    assert [str(p) for p in report.skipped] == [
        f"{bad} (item 2 (post None)): missing id",
        f"{bad} (item 3): a post must be an object, got list",
    ]
    assert failure(Source("wp-json", str(tmp_path / "empty"))) == (
        f"{tmp_path / 'empty'}: no such file or directory of WordPress REST API posts"
    )


class _Api(http.server.BaseHTTPRequestHandler):
    """/wp-json/wp/v2/posts in pages of 2 posts (5 posts, 3 pages); /slow sleeps; /html is not JSON."""

    seen: list[tuple[str, str]] = []  # noqa: RUF012 - shared by the handler instances of one test server

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("User-Agent", "")))
        if self.path.startswith("/slow/"):
            time.sleep(3)
        if self.path.startswith("/html/"):
            return self._send(200, b"<html><body>Maintenance</body></html>", "text/html", {})
        if not self.path.startswith(("/wp-json/wp/v2/posts?", "/slow/wp-json/wp/v2/posts?")):
            return self._send(404, b'{"code":"rest_no_route"}', "application/json", {})
        page = int(parse_qs(urlsplit(self.path).query)["page"][0])
        posts = [post(n, f"Post {n}") for n in range(2 * page - 1, min(2 * page, 5) + 1)]
        self._send(200, json.dumps(posts).encode(), "application/json", {"X-WP-TotalPages": "3"})

    def _send(self, status: int, body: bytes, kind: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def api_server() -> Iterator[str]:
    _Api.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_wpjson_fetches_every_page_of_a_site() -> None:
    with api_server() as base:
        source = Source("wp-json", base + "/", user_agent="test-agent/1")
        got = [(pos, r["id"]) for pos, r in records_of(source)]
        report = read_corpus(source)
    assert got == [
        ("page 1 item 1 (post 1)", "1"),
        ("page 1 item 2 (post 2)", "2"),
        ("page 2 item 1 (post 3)", "3"),
        ("page 2 item 2 (post 4)", "4"),
        ("page 3 item 1 (post 5)", "5"),
    ]
    # Three pages (X-WP-TotalPages), with _embed, each asked with the source's user agent; twice over.
    assert _Api.seen[:3] == [
        (f"/wp-json/wp/v2/posts?per_page=100&page={n}&_embed=1", "test-agent/1") for n in (1, 2, 3)
    ]
    assert len(_Api.seen) == 6
    assert [a.title for a in report.articles] == [f"Post {n}" for n in range(1, 6)]
    assert report.articles[4].section == "Sea & Sky"


def test_wpjson_fetch_failures_are_clear() -> None:
    with api_server() as base:
        assert failure(Source("wp-json", base + "/missing")) == (
            f"{base}/missing/wp-json/wp/v2/posts?per_page=100&page=1&_embed=1: HTTP 404 Not Found"
        )
        assert failure(Source("wp-json", base + "/html")) == (
            f"{base}/html/wp-json/wp/v2/posts?per_page=100&page=1&_embed=1:1: not JSON: Expecting value at column 1"
        )
        # The handler sleeps 3 s: this message can only come from the 0.5 s timeout.
        assert failure(Source("wp-json", base + "/slow", timeout=0.5)) == (
            f"{base}/slow/wp-json/wp/v2/posts?per_page=100&page=1&_embed=1: no answer within 0.5 s"
        )
    assert failure(Source("wp-json", "ftp://site.example/")) == (
        "ftp://site.example/: only http and https URLs can be fetched"
    )


def test_wpjson_failure_writes_no_model(tmp_path: Path) -> None:
    from recommender.train import train

    with api_server() as base, pytest.raises(CorpusError):
        train([Source("wp-json", base + "/missing")], tmp_path / "models", TrainOptions(min_df=1, n_jobs=1))
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_a_gzipped_export_is_sniffed_as_wxr(tmp_path: Path) -> None:
    import gzip
    import shutil

    from recommender.sources import sniff

    export = tmp_path / "export.xml.gz"
    with open(site_corpus("wordpress-theme-unit-test.xml"), "rb") as plain, gzip.open(export, "wb") as packed:
        shutil.copyfileobj(plain, packed)
    assert sniff(export) == "wxr"
    assert len(read_corpus([export]).articles) == 56
