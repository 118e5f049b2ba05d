"""End to end: ``recommender serve`` as a real process on 127.0.0.1, spoken to over HTTP."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recommender.bundle import current_version, set_current

from .conftest import DEMO_CORPUS, ROOT, shared_corpus, write_jsonl
from .servers import EVIL_TITLE, EVIL_URL, Reply, Server, evil_articles, http, running_server, start_server

pytestmark = pytest.mark.slow

TOKEN = "s3cret"
ORIGIN = "https://site.example"
SLASH_ID = "2026/06/saltmere-night-ferry"
RELATED = "/v1/articles/{article_id:path}/related"
NO_MODEL = "no model loaded: train one with 'recommender train' and reload the service"
RELOAD_TIMEOUT = 60.0

SLASH_ARTICLE = {
    "id": SLASH_ID,
    "title": "Saltmere Lines adds a night ferry to the outer islands",
    "body": "Saltmere Lines will run a night ferry to the outer Saltmere islands from June, the operator said, "
    "after islanders asked for a late crossing. The boat leaves the harbour after the last train arrives.",
    "section": "travel",
    "tags": ["ferries", "saltmere-islands"],
    "published_at": "2026-06-01",
    "url": "https://demo.example.com/travel/night-ferry",
}


def demo_records() -> list[dict]:
    return [json.loads(line) for line in DEMO_CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def train_cli(corpus: Path, models: Path, *extra: str) -> str:
    """Train through the real command line; return the new current version."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "recommender",
            "train",
            "--corpus",
            str(corpus),
            "--models-dir",
            str(models),
            "--quiet",
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    version = current_version(models)
    assert version
    return version


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(
        tmp_path_factory.mktemp("e2e-corpus") / "corpus.jsonl", [*demo_records(), *evil_articles(), SLASH_ARTICLE]
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> Path:
    models = tmp_path_factory.mktemp("e2e") / "models"
    train_cli(corpus, models)
    return models


@pytest.fixture(scope="module")
def server(models: Path) -> Iterator[Server]:
    env = {"RECOMMENDER_ADMIN_TOKEN": TOKEN, "RECOMMENDER_CORS_ORIGINS": ORIGIN, "RECOMMENDER_CACHE_MAX_AGE": "77"}
    with running_server(models, env=env) as s:
        yield s


@pytest.fixture(scope="module")
def version(server: Server) -> str:
    return server.get("/readyz").json()["model_version"]


def post_json(server: Server, path: str, payload: object, headers: dict[str, str] | None = None) -> Reply:
    return server.request(
        "POST", path, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
    )


# --- the routes --------------------------------------------------------------------


def test_health_and_readiness(server: Server, models: Path) -> None:
    assert server.get("/healthz").status == 200
    assert server.get("/healthz").json() == {"status": "ok"}
    r = server.get("/readyz")
    assert r.status == 200
    assert r.json() == {"status": "ready", "model_version": current_version(models)}


def test_related(server: Server, version: str) -> None:
    r = server.get("/v1/articles/biz-saltmere-lines-fare-rise/related?limit=4")
    assert r.status == 200
    assert r.header("Content-Type") == "application/json"
    body = r.json()
    assert body["id"] == "biz-saltmere-lines-fare-rise" and body["model_version"] == version
    items = body["items"]
    assert len(items) == 4
    for item in items:
        assert {"id", "title", "url", "excerpt", "image", "published_at", "section", "score"} <= set(item)
        assert item["id"] != "biz-saltmere-lines-fare-rise"
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    assert "saltmere" in " ".join(i["title"].lower() for i in items)
    assert len(server.get("/v1/articles/biz-saltmere-lines-fare-rise/related").json()["items"]) == 5


def test_related_filters(server: Server) -> None:
    base = "/v1/articles/biz-saltmere-lines-fare-rise/related?limit=50"
    everything = server.get(base).json()["items"]
    ids = [i["id"] for i in everything]
    travel = server.get(base + "&section=travel").json()["items"]
    assert travel and {i["section"] for i in travel} == {"travel"}
    assert len(travel) >= len([i for i in everything if i["section"] == "travel"])
    tagged = server.get(base + "&tag=strikes&tag=electric-vessels").json()["items"]
    assert tagged and all({"strikes", "electric-vessels"} & set(i["tags"]) for i in tagged)
    excluded = server.get(base + f"&exclude={ids[0]}&exclude={ids[1]}").json()["items"]
    assert ids[0] not in [i["id"] for i in excluded] and ids[1] not in [i["id"] for i in excluded]
    dated = server.get(base + "&published_after=2026-05-01&published_before=2026-08-31T23:59:59Z").json()["items"]
    assert dated and all("2026-05-01" <= i["published_at"][:10] <= "2026-08-31" for i in dated)


def test_post_related(server: Server, version: str) -> None:
    draft = {
        "title": "Ferry fares rise again",
        "body": "Saltmere Lines said island ferry fares will rise because fuel costs more.",
        "limit": 3,
    }
    r = post_json(server, "/v1/related", draft)
    assert r.status == 200
    body = r.json()
    assert body["id"] is None and body["model_version"] == version
    assert len(body["items"]) == 3
    assert "biz-saltmere-lines-fare-rise" in [i["id"] for i in body["items"]]
    filtered = post_json(server, "/v1/related", {**draft, "section": "travel"}).json()["items"]
    assert filtered and {i["section"] for i in filtered} == {"travel"}


def test_article_and_model(server: Server, version: str, models: Path) -> None:
    r = server.get("/v1/articles/biz-saltmere-lines-fare-rise")
    assert r.status == 200
    article = r.json()
    assert article["id"] == "biz-saltmere-lines-fare-rise"
    assert article["title"] == "Saltmere Lines raises island ferry fares by 9% citing fuel costs"
    assert article["section"] == "business"
    r = server.get("/v1/model")
    assert r.status == 200
    summary = r.json()
    assert summary["version"] == version
    assert summary["articles"] == len(demo_records()) + 4
    manifest = json.loads((models / version / "manifest.json").read_text())
    assert summary["vocabulary"] == manifest["vocabulary"]


def test_ids_with_slashes(server: Server) -> None:
    r = server.get(f"/v1/articles/{SLASH_ID}/related?limit=3")
    assert r.status == 200 and r.json()["id"] == SLASH_ID
    assert len(r.json()["items"]) == 3
    encoded = SLASH_ID.replace("/", "%2F")
    assert server.get(f"/v1/articles/{encoded}/related?limit=3").json() == r.json()
    assert server.get(f"/v1/articles/{SLASH_ID}").json()["id"] == SLASH_ID
    assert server.get(f"/v1/articles/{SLASH_ID}/related.html").status == 200


def test_metrics(server: Server, version: str) -> None:
    before = server.get("/metrics").body.decode()

    def count(text: str, status: str) -> float:
        m = re.search(
            rf'^recommender_http_requests_total\{{method="GET",route="{re.escape(RELATED)}",status="{status}"\}} (\S+)$',
            text,
            re.MULTILINE,
        )
        return float(m.group(1)) if m else 0.0

    server.get("/v1/articles/biz-saltmere-lines-crew-strike/related")
    server.get("/v1/articles/biz-saltmere-lines-crew-strike/related")
    server.get("/v1/articles/no-such/related")
    r = server.get("/metrics")
    assert r.status == 200
    assert (r.header("Content-Type") or "").startswith("text/plain")
    text = r.body.decode()
    assert "# TYPE recommender_http_requests_total counter" in text
    assert "# TYPE recommender_http_request_duration_seconds histogram" in text
    assert count(text, "404") - count(before, "404") == 1
    assert count(text, "200") - count(before, "200") == 2
    assert f'recommender_model_info{{version="{version}"}} 1.0' in text
    assert re.search(r"^recommender_model_articles \d+", text, re.MULTILINE)


def test_widget_js_demo_page_and_docs(server: Server) -> None:
    r = server.get("/widget.js")
    assert r.status == 200
    assert r.header("Content-Type") == "application/javascript; charset=utf-8"
    page = server.get("/")
    assert page.status == 200
    text = page.body.decode()
    assert 'id="article-picker"' in text and "data-related-article=" in text
    assert '<script src="/widget.js" async></script>' in text
    picked = server.get("/?article=evil-1").body.decode()
    assert '<div data-related-article="evil-1" data-limit="3"></div>' in picked
    assert EVIL_TITLE not in picked
    assert server.get("/docs").status == 200
    spec = server.get("/openapi.json").json()
    assert "/v1/articles/{article_id}/related" in spec["paths"]


# --- error statuses ----------------------------------------------------------------------


def test_unknown_article_is_404(server: Server) -> None:
    for path in ("/v1/articles/no-such-article/related", "/v1/articles/no-such-article"):
        r = server.get(path)
        assert r.status == 404
        assert r.json() == {"detail": "unknown article id 'no-such-article'", "id": "no-such-article"}


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("limit=0", "limit must be an integer in [1, 50], got 0"),
        ("limit=abc", "limit must be an integer in [1, 50], got 'abc'"),
        ("limit=51", "limit must be an integer in [1, 50], got 51"),
        ("published_after=notadate", "published_after must be an ISO 8601 date or datetime, got 'notadate'"),
        ("published_before=31/12/2026", "published_before must be an ISO 8601 date or datetime, got '31/12/2026'"),
    ],
)
def test_bad_parameters_are_422(server: Server, query: str, detail: str) -> None:
    r = server.get(f"/v1/articles/evil-0/related?{query}")
    assert r.status == 422
    assert r.json()["detail"] == detail


def test_post_errors(server: Server) -> None:
    r = server.request("POST", "/v1/related", b"hello", {"Content-Type": "text/plain"})
    assert r.status == 415
    assert r.json() == {"detail": "request body must be application/json, got text/plain"}
    r = server.request("POST", "/v1/related", b"{not json", {"Content-Type": "application/json"})
    assert r.status == 422
    assert "JSON decode error" in r.json()["detail"]
    r = post_json(server, "/v1/related", {"title": "x", "limit": 0})
    assert r.status == 422 and r.json()["detail"] == "limit must be an integer in [1, 50], got 0"
    r = post_json(server, "/v1/related", {"title": "x", "published_after": "soon"})
    assert r.status == 422
    assert r.json()["detail"] == "published_after must be an ISO 8601 date or datetime, got 'soon'"


def raw_exchange(port: int, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send ``head`` and ``body`` on a plain socket and read one answer.

    The body is sent from a thread while the answer is read, so a server may
    answer before or after it has read the body; errors of the sender (the
    server closing early) are left to test_api_contract_check_on_bbc_news.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)

        def send_body() -> None:
            with contextlib.suppress(OSError):
                sock.sendall(body)

        sender = threading.Thread(target=send_body, daemon=True)
        sender.start()
        received = b""
        while b"\r\n\r\n" not in received or len(received) < _expected_length(received):
            data = sock.recv(65536)
            if not data:
                break
            received += data
    sender.join(timeout=30)
    status_line, _, rest = received.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def _expected_length(received: bytes) -> int:
    head, _, _ = received.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return len(head) + 4 + int(match.group(1)) if match else 1 << 30


def test_body_too_large_with_content_length(server: Server) -> None:
    declared = 2 * 1024 * 1024
    head = (
        f"POST /v1/related HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    status, body = raw_exchange(server.port, head, b" " * declared)
    assert status == 413
    assert json.loads(body) == {"detail": f"request body must be at most 1048576 bytes, got {declared}"}


def test_body_too_large_chunked(server: Server) -> None:
    head = (
        b"POST /v1/related HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    payload = b'{"title": "' + b"x" * (1024 * 1024) + b'"}'
    chunked = f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n"
    status, body = raw_exchange(server.port, head, chunked)
    assert status == 413
    assert json.loads(body) == {"detail": "request body must be at most 1048576 bytes"}


def test_body_within_the_limit_chunked(server: Server) -> None:
    payload = json.dumps({"title": "Ferry fares", "body": "Saltmere island ferry fares rise", "limit": 2}).encode()
    head = (
        b"POST /v1/related HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    chunked = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (payload[:10], payload[10:])) + b"0\r\n\r\n"
    status, body = raw_exchange(server.port, head, chunked)
    assert status == 200
    assert len(json.loads(body)["items"]) == 2


def test_etag_and_cache_control(server: Server, version: str) -> None:
    path = "/v1/articles/evil-0/related?limit=3"
    r = server.get(path)
    etag = r.header("ETag")
    assert etag and etag.startswith(f'"{version}-')
    assert r.header("Cache-Control") == "public, max-age=77"
    again = server.get(path, {"If-None-Match": etag})
    assert again.status == 304 and again.body == b""
    assert server.get(path, {"If-None-Match": '"stale"'}).status == 200
    assert server.get("/v1/articles/evil-0/related?limit=4").header("ETag") != etag


def test_cors(server: Server) -> None:
    ok = server.get("/v1/articles/evil-0/related", {"Origin": ORIGIN})
    assert ok.header("Access-Control-Allow-Origin") == ORIGIN
    other = server.get("/v1/articles/evil-0/related", {"Origin": "https://elsewhere.example"})
    assert other.status == 200
    assert other.header("Access-Control-Allow-Origin") is None


def test_reload_auth(server: Server, version: str) -> None:
    r = server.request("POST", "/v1/admin/reload")
    assert r.status == 401
    assert r.json() == {"detail": "admin token required: send 'Authorization: Bearer <token>'"}
    assert r.header("WWW-Authenticate") == "Bearer"
    r = server.request("POST", "/v1/admin/reload", headers={"Authorization": "Bearer wrong"})
    assert r.status == 403 and r.json() == {"detail": "wrong admin token"}
    r = server.request("POST", "/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status == 200
    assert r.json() == {"model_version": version, "previous": version}


# --- the hostile articles ----------------------------------------------------------------------


def test_evil_articles_are_related_but_not_collapsed(server: Server) -> None:
    for n in range(3):
        body = server.get(f"/v1/articles/evil-{n}/related?limit=5").json()
        ids = [i["id"] for i in body["items"]]
        others = {f"evil-{m}" for m in range(3) if m != n}
        assert others <= set(ids[:3]), ids
        assert all(i["score"] < 0.9 for i in body["items"])


def test_html_fragment_is_inert(server: Server) -> None:
    r = server.get("/v1/articles/evil-0/related.html?limit=3")
    assert r.status == 200
    assert (r.header("Content-Type") or "").startswith("text/html")
    html = r.body.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert EVIL_TITLE not in html
    assert "<script" not in html and "<svg" not in html
    assert EVIL_URL not in html and "javascript:" not in html.lower()
    assert html.count('<li class="yml-item">') == 3


def test_json_keeps_the_text_as_data(server: Server) -> None:
    # JSON is data: the widget renders it as text, so the payload comes back verbatim.
    article = server.get("/v1/articles/evil-0").json()
    assert article["title"].startswith(EVIL_TITLE)
    assert article["url"] == EVIL_URL


# --- servers of their own: no model, no token, reloads --------------------------------------------


def test_no_model_is_503_and_reload_disabled_without_token(tmp_path: Path) -> None:
    empty = tmp_path / "models"
    empty.mkdir()
    with running_server(empty, wait_for=503) as s:
        assert s.get("/healthz").status == 200
        for path in (
            "/readyz",
            "/v1/articles/evil-0/related",
            "/v1/articles/evil-0",
            "/v1/model",
            "/v1/articles/x/related.html",
        ):
            r = s.get(path)
            assert r.status == 503, path
            assert r.json() == {"detail": NO_MODEL}
        r = post_json(s, "/v1/related", {"title": "cup"})
        assert r.status == 503 and r.json() == {"detail": NO_MODEL}
        assert s.get("/").status == 200
        assert s.get("/metrics").status == 200
        r = s.request("POST", "/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status == 404
        assert r.json() == {"detail": "reload is disabled: no admin token is configured"}


def poll_version(server: Server, want: str) -> str:
    """Poll /v1/model until it reports ``want`` (bounded); return the last version seen."""
    deadline = time.monotonic() + RELOAD_TIMEOUT
    seen = ""
    while time.monotonic() < deadline:
        seen = server.get("/v1/model").json()["version"]
        if seen == want:
            return seen
        time.sleep(0.05)
    return seen


def poll_log(server: Server, needle: str, times: int = 1) -> bool:
    """Wait until ``needle`` is in the server's log ``times`` times (earlier lines count too)."""
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while time.monotonic() < deadline:
        if server.log().count(needle) >= times:
            return True
        time.sleep(0.05)
    return False


def damage(models: Path, version: str) -> None:
    target = models / version / "neighbour_scores.npy"
    data = bytearray(target.read_bytes())
    data[-4:] = b"\xff\xff\xff\xff"
    target.write_bytes(bytes(data))


def small_corpus(path: Path, extra: int) -> Path:
    """The demo corpus plus ``extra`` evil articles: a different corpus, hence a different version."""
    return write_jsonl(path, [*demo_records(), *evil_articles()[:extra]])


def test_sighup_and_reload_swap_or_refuse(tmp_path: Path) -> None:
    models = tmp_path / "models"
    first = train_cli(small_corpus(tmp_path / "a.jsonl", 0), models)
    # The link watcher off: this test is about SIGHUP and the reload route alone (and a
    # bundle damaged after training must not be loaded by the watcher in between).
    env = {"RECOMMENDER_ADMIN_TOKEN": TOKEN, "RECOMMENDER_MODEL_WATCH_INTERVAL": "0"}
    with running_server(models, env=env) as s:
        assert s.get("/v1/model").json()["version"] == first
        # SIGHUP: retrain into the same folder, signal the server, the new model answers.
        second = train_cli(small_corpus(tmp_path / "b.jsonl", 3), models)
        assert second != first
        assert s.get("/v1/articles/evil-0").status == 404
        os.kill(s.pid, signal.SIGHUP)
        assert poll_version(s, second) == second
        assert s.get("/v1/articles/evil-0").status == 200
        assert s.get("/v1/articles/evil-1/related").json()["model_version"] == second

        # A damaged bundle made current is refused by the reload route and by SIGHUP.
        third = train_cli(small_corpus(tmp_path / "c.jsonl", 2), models)
        damage(models, third)
        r = s.request("POST", "/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status == 409
        assert r.json()["detail"].startswith(f"bundle refused, still serving {second}: ")
        assert s.get("/v1/model").json()["version"] == second
        refusals = s.log().count("model not loaded")  # the reload route's refusal is logged too
        os.kill(s.pid, signal.SIGHUP)
        assert poll_log(s, "model not loaded", times=refusals + 1), s.log()
        assert s.process.poll() is None
        assert s.get("/readyz").json()["model_version"] == second
        assert s.get("/v1/articles/evil-2").status == 200  # only the second model has it

        # Back to the first bundle through the admin route.
        set_current(models, first)
        r = s.request("POST", "/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status == 200 and r.json() == {"model_version": first, "previous": second}
        assert s.get("/v1/articles/evil-0").status == 404


def test_server_stops_on_sigterm(models: Path) -> None:
    s = start_server(models)
    try:
        os.killpg(s.pid, signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert s.process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Finished server process" in s.log()
    finally:
        s.stop()


# --- the outside contract check, on BBC News ----------------------------------------------------------


@pytest.mark.corpora
def test_api_contract_check_on_bbc_news(tmp_path: Path) -> None:
    source = shared_corpus("bbc-news.jsonl.gz")
    check = ROOT.parent / "shared" / "checks" / "api_contract.py"
    if not check.is_file():
        reason = f"{check} is not available"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}")
        pytest.skip(reason)
    records = []
    with gzip.open(source, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            record.pop("category", None)  # nothing of the label reaches the model
            records.append(record)
    corpus = write_jsonl(tmp_path / "bbc.jsonl", [*records, *evil_articles()])
    models = tmp_path / "models"
    train_cli(corpus, models)
    with running_server(models, env={"RECOMMENDER_ADMIN_TOKEN": TOKEN}) as s:
        done = subprocess.run(
            [sys.executable, str(check), s.base_url], capture_output=True, text=True, timeout=300, cwd=ROOT
        )
        # One more look at the evil box on BBC News: the three reports find each other.
        ids = [i["id"] for i in s.get("/v1/articles/evil-0/related?limit=3").json()["items"]]
    assert done.returncode == 0, done.stdout + done.stderr
    assert "api contract: 0 failures" in done.stdout
    assert {"evil-1", "evil-2"} <= set(ids), ids


def test_http_helper_reports_errors() -> None:
    # A closed port: urllib raises, it does not hang (used by the widget's unreachable-service test too).
    from .servers import free_port

    with pytest.raises(OSError):
        http("GET", f"http://127.0.0.1:{free_port()}/healthz", timeout=5)
