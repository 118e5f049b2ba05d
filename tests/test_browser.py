"""The widget in a real headless Chromium (Debian's ``chromium``), driven with Playwright.

Against a real ``recommender serve`` process: the demo page and a page on
another origin embedding ``widget.js`` show the box with three items; an
unreachable service renders nothing; hostile titles, excerpts and URLs stay
inert text. Screenshots go to ``test-output/`` at the repository root.

Without Chromium (or the Playwright package) these tests skip, unless ``CI``
is set, where they fail.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from recommender.train import TrainOptions, train

from .conftest import DEMO_CORPUS, ROOT, write_jsonl
from .servers import EVIL_TITLE, Server, evil_articles, free_port, running_server

pytestmark = [pytest.mark.slow, pytest.mark.browser]

OUTPUT = ROOT / "test-output"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SOURCE = "biz-saltmere-lines-fare-rise"
TIMEOUT_MS = 30_000


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {reason}")
    pytest.skip(reason)


def chromium_path() -> str:
    for candidate in (os.environ.get("RECOMMENDER_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    _unavailable("no Chromium found (install Debian's 'chromium'; .ci/run does)")
    raise AssertionError("unreachable")


# --- servers ----------------------------------------------------------------------------


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class StaticSite:
    """A second, unrelated site on 127.0.0.1 that embeds the widget."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def page(self, name: str, html: str) -> str:
        (self.root / name).write_text(html, encoding="utf-8")
        return f"{self.origin}/{name}"


def article_page(title: str, inner: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title></head><body style='font-family:Georgia,serif;max-width:46em;margin:2em auto'>"
        f"<h1>{title}</h1><p>The article a site published; its related box follows.</p>{inner}</body></html>"
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticSite]:
    s = StaticSite(tmp_path_factory.mktemp("site"))
    s.thread.start()
    try:
        yield s
    finally:
        s.httpd.shutdown()
        s.httpd.server_close()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    records = [json.loads(line) for line in DEMO_CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    corpus = write_jsonl(root / "corpus.jsonl", [*records, *evil_articles()])
    train([corpus], root / "models", TrainOptions(n_jobs=1))
    return root / "models"


@pytest.fixture(scope="module")
def service(models: Path, site: StaticSite) -> Iterator[Server]:
    chromium_path()  # no server start when the browser tests skip anyway
    with running_server(models, env={"RECOMMENDER_CORS_ORIGINS": site.origin}) as s:
        yield s


# --- the browser -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class Watched:
    """A page with its dialogs, uncaught errors and failed requests recorded."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.failed: list[str] = []
        page.on("dialog", self._on_dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("requestfailed", lambda request: self.failed.append(request.url))
        page.set_default_timeout(TIMEOUT_MS)

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def settle(self) -> None:
        """Wait until the network is quiet and queued tasks (image error events, promise callbacks) ran."""
        self.page.wait_for_load_state("networkidle")
        self.page.evaluate("() => new Promise(r => setTimeout(() => requestAnimationFrame(() => setTimeout(r, 0)), 0))")

    def boxes(self, count: int) -> list[dict[str, str]]:
        """Wait for ``count`` widget items and return their visible title and excerpt."""
        self.page.wait_for_function(f"() => document.querySelectorAll('.yml-item').length === {count}")
        return self.page.eval_on_selector_all(
            ".yml-item",
            """items => items.map(li => ({
                title: li.querySelector('.yml-title') ? li.querySelector('.yml-title').innerText : '',
                excerpt: li.querySelector('.yml-excerpt') ? li.querySelector('.yml-excerpt').innerText : '',
                href: li.querySelector('a') ? li.querySelector('a').getAttribute('href') : null,
                visible: li.getBoundingClientRect().height > 0,
            }))""",
        )


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    try:
        yield Watched(context.new_page())
    finally:
        context.close()


def screenshot(watched: Watched, name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / name
    watched.page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    return path


def expected_titles(service: Server, article_id: str, limit: int = 3) -> list[str]:
    items = service.get(f"/v1/articles/{article_id}/related?limit={limit}").json()["items"]
    return [item["title"] for item in items]


def widget_embed(service: Server, article_id: str) -> str:
    return f'<div data-related-article="{article_id}"></div><script src="{service.url("/widget.js")}" async></script>'


# --- (a) the demo page, (b) a page on another site embedding widget.js ---------------------------


def test_demo_page_shows_the_box(watched: Watched, service: Server) -> None:
    watched.page.goto(service.url(f"/?article={SOURCE}"))
    items = watched.boxes(3)
    assert [i["title"] for i in items] == expected_titles(service, SOURCE)
    for item in items:
        assert item["title"].strip() and item["excerpt"].strip() and item["visible"]
        assert len(item["excerpt"]) <= 100
        assert item["href"] and item["href"].startswith("https://")
    assert watched.page.locator(".yml-heading").inner_text().lower() == "you may also like"
    assert watched.page.locator("#article-picker").is_visible()
    watched.settle()
    screenshot(watched, "demo-page.png")
    assert watched.errors == [] and watched.dialogs == []


def test_demo_page_picker_switches_articles(watched: Watched, service: Server) -> None:
    watched.page.goto(service.url(f"/?article={SOURCE}"))
    watched.boxes(3)
    other = "travel-saltmere-ferry-strike-advice"
    with watched.page.expect_navigation():
        watched.page.select_option("#article-picker", other)
    assert f"article={other}" in watched.page.url
    items = watched.boxes(3)
    assert [i["title"] for i in items] == expected_titles(service, other)


def test_widget_embedded_on_another_site(watched: Watched, service: Server, site: StaticSite) -> None:
    url = site.page("embed.html", article_page("Ferry fares rise", widget_embed(service, SOURCE)))
    watched.page.goto(url)
    items = watched.boxes(3)
    assert [i["title"] for i in items] == expected_titles(service, SOURCE)
    for item in items:
        assert item["title"].strip() and item["excerpt"].strip() and item["visible"]
    # Relative image paths in the corpus are resolved against the service, not the embedding site.
    sources = watched.page.eval_on_selector_all(".yml-image", "imgs => imgs.map(i => i.src)")
    assert sources and all(src.startswith(service.base_url + "/static/demo/") for src in sources)
    watched.settle()
    assert watched.page.eval_on_selector_all(".yml-image", "imgs => imgs.every(i => i.naturalWidth > 0)")
    screenshot(watched, "widget-embed.png")
    assert watched.errors == [] and watched.dialogs == []


def test_widget_respects_data_limit_and_several_boxes(watched: Watched, service: Server, site: StaticSite) -> None:
    inner = (
        f'<div id="one" data-related-article="{SOURCE}" data-limit="2"></div>'
        '<div id="two" data-related-article="travel-saltmere-ferry-strike-advice"></div>'
        f'<script src="{service.url("/widget.js")}" async></script>'
    )
    watched.page.goto(site.page("two-boxes.html", article_page("Two boxes", inner)))
    watched.boxes(5)
    assert watched.page.locator("#one .yml-item").count() == 2
    assert watched.page.locator("#two .yml-item").count() == 3


# --- (c) an unreachable service renders nothing -------------------------------------------------


def assert_nothing_rendered(watched: Watched) -> None:
    assert watched.page.locator(".yml-box").count() == 0
    assert watched.page.eval_on_selector("[data-related-article]", "el => el.innerHTML") == ""
    body = watched.page.locator("body").inner_text().lower()
    assert "error" not in body and "failed" not in body
    assert watched.errors == [] and watched.dialogs == []


def test_unreachable_service_api_renders_nothing(watched: Watched, service: Server, site: StaticSite) -> None:
    # widget.js loads, but every API call is refused as if the service were down.
    watched.page.route("**/v1/**", lambda route: route.abort("connectionrefused"))
    url = site.page("down.html", article_page("Service down", widget_embed(service, SOURCE)))
    with watched.page.expect_event("requestfailed"):
        watched.page.goto(url)
    watched.settle()
    assert any("/v1/articles/" in failed for failed in watched.failed)
    assert_nothing_rendered(watched)
    screenshot(watched, "widget-unreachable.png")


def test_unreachable_service_script_renders_nothing(watched: Watched, site: StaticSite) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    inner = f'<div data-related-article="{SOURCE}"></div><script src="{closed}/widget.js" async></script>'
    url = site.page("no-script.html", article_page("No service at all", inner))
    watched.page.goto(url)
    watched.settle()
    assert any(failed.startswith(closed) for failed in watched.failed)
    assert_nothing_rendered(watched)


@pytest.mark.parametrize("status", [404, 500, 503])
def test_service_errors_render_nothing(watched: Watched, service: Server, site: StaticSite, status: int) -> None:
    watched.page.route(
        "**/v1/**",
        lambda route: route.fulfill(status=status, content_type="application/json", body='{"detail": "broken"}'),
    )
    watched.page.goto(site.page(f"error-{status}.html", article_page("Broken service", widget_embed(service, SOURCE))))
    watched.settle()
    assert_nothing_rendered(watched)


# --- (d) hostile articles stay inert -----------------------------------------------------------------


INERT_CHECKS = """() => ({
    xss: window.__xss === undefined ? null : String(window.__xss),
    scripts: Array.from(document.scripts).filter(s => /alert|__xss/.test(s.textContent)).length,
    badImages: document.querySelectorAll('img[src="x"]').length,
    svg: document.querySelectorAll('svg').length,
    jsLinks: Array.from(document.querySelectorAll('[href],[src]'))
        .filter(e => /^\\s*javascript:/i.test(e.getAttribute('href') || e.getAttribute('src') || '')).length,
    handlers: Array.from(document.querySelectorAll('*'))
        .filter(e => Array.from(e.attributes).some(a => a.name.startsWith('on')
            && !(e.id === 'article-picker' && a.name === 'onchange'))).length,
})"""


def assert_inert(watched: Watched) -> None:
    watched.settle()
    found = watched.page.evaluate(INERT_CHECKS)
    assert found == {"xss": None, "scripts": 0, "badImages": 0, "svg": 0, "jsLinks": 0, "handlers": 0}
    assert watched.dialogs == []
    assert watched.errors == []


def test_the_checks_would_see_an_attack(watched: Watched, site: StaticSite) -> None:
    # Control: the same payloads parsed as HTML do fire, and the listeners see them.
    payload = json.dumps(EVIL_TITLE + evil_articles()[2]["excerpt"])
    inner = f"<div id='target'></div><script>document.getElementById('target').innerHTML = {payload};</script>"
    watched.page.goto(site.page("control.html", article_page("Control", inner)))
    watched.page.wait_for_function("() => window.__xss === 'excerpt-2'")
    watched.settle()
    assert watched.dialogs == ["alert: 1"]


def test_widget_renders_hostile_articles_as_text(watched: Watched, service: Server, site: StaticSite) -> None:
    url = site.page("evil-widget.html", article_page("Derby day", widget_embed(service, "evil-0")))
    watched.page.goto(url)
    items = watched.boxes(3)
    titles = [i["title"] for i in items]
    assert titles == expected_titles(service, "evil-0")
    evil = [t for t in titles if t.startswith(EVIL_TITLE)]
    assert len(evil) == 2  # evil-1 and evil-2, shown literally
    assert all(item["href"] is None for item in items if item["title"].startswith(EVIL_TITLE))
    assert watched.page.get_by_text(EVIL_TITLE + " Late volley settles the derby", exact=True).is_visible()
    assert_inert(watched)
    screenshot(watched, "xss-widget.png")


def test_html_fragment_renders_hostile_articles_as_text(watched: Watched, service: Server, site: StaticSite) -> None:
    # A site including the fragment server-side, as it came from the service.
    fragment = service.get("/v1/articles/evil-1/related.html?limit=3").body.decode()
    watched.page.goto(site.page("evil-fragment.html", article_page("Derby day", fragment)))
    items = watched.boxes(3)
    evil = [i for i in items if i["title"].startswith(EVIL_TITLE)]
    assert len(evil) == 2 and all(i["href"] is None for i in evil)
    assert watched.page.get_by_text(EVIL_TITLE + " Rovers edge Athletic in derby thriller", exact=True).is_visible()
    excerpts = " ".join(i["excerpt"] for i in evil)
    assert "<script>" in excerpts or "<img src=x" in excerpts
    assert_inert(watched)
    screenshot(watched, "xss-fragment.png")


def test_demo_page_of_a_hostile_article(watched: Watched, service: Server) -> None:
    watched.page.goto(service.url("/?article=evil-2"))
    watched.boxes(3)
    assert watched.page.locator("#demo-article h1").inner_text().startswith(EVIL_TITLE)
    assert_inert(watched)
