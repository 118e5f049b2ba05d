"""The HTTP API in process: every route, every error status and its exact message."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from recommender.api.app import create_app
from recommender.api.routes import NO_MODEL
from recommender.api.settings import Settings
from recommender.bundle import set_current
from recommender.recommend import Recommender
from recommender.train import TrainOptions, train

from .conftest import TINY, write_jsonl
from .servers import EVIL_TITLE, evil_articles

TOKEN = "t0ken"
ORIGIN = "https://site.example"
MAX_AGE = 123
MAX_BODY = 4096
SLASH_ID = "2026/03/comet-returns"
ITEM_FIELDS = {"id", "title", "url", "excerpt", "image", "published_at", "section", "score"}
RELATED = "/v1/articles/{article_id:path}/related"

EXTRA = [
    {
        "id": SLASH_ID,
        "title": "The comet returns to the night sky",
        "body": "Astronomers at the observatory pointed the telescope at the comet as it returned.",
        "section": "science",
        "tags": ["space"],
        "published_at": "2026-03-20",
        "url": "https://news.example/2026/03/comet-returns",
        "image": "https://news.example/img/comet.jpg",
    }
]


def options(k: int = 5) -> TrainOptions:
    # min_df 1: the tiny corpus has too few articles for document-frequency pruning.
    return TrainOptions(k=k, min_df=1, max_df=1.0, min_similarity=0.01, n_jobs=1)


def train_into(models: Path, records: list[dict[str, Any]], k: int = 5) -> str:
    corpus = write_jsonl(models.parent / f"corpus-{len(records)}-{k}.jsonl", records)
    return train([corpus], models, options(k)).version


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("api") / "models"
    train_into(models, [*TINY, *EXTRA, *evil_articles()])
    return models


@pytest.fixture(scope="module")
def rec(models: Path) -> Recommender:
    return Recommender.load(models)


def make_client(models_dir: Path, **overrides: Any) -> TestClient:
    settings: dict[str, Any] = {
        "models_dir": models_dir,
        "admin_token": TOKEN,
        "cors_origins": [ORIGIN],
        "cache_max_age": MAX_AGE,
        "max_body_bytes": MAX_BODY,
        # These tests drive reloads through the route; the link watcher has tests of its own.
        "model_watch_interval": 0,
    }
    settings.update(overrides)
    return TestClient(create_app(Settings(**settings)))


@pytest.fixture
def client(models: Path) -> Iterator[TestClient]:
    with make_client(models) as c:
        yield c


@pytest.fixture
def empty_client(tmp_path: Path) -> Iterator[TestClient]:
    empty = tmp_path / "empty-models"
    empty.mkdir()
    with make_client(empty) as c:
        yield c


# --- GET /v1/articles/{id}/related -------------------------------------------


def test_related_list_shape(client: TestClient, rec: Recommender) -> None:
    r = client.get("/v1/articles/f1/related")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["id"] == "f1"
    assert body["model_version"] == rec.version
    items = body["items"]
    assert len(items) == 5  # the default limit
    for item in items:
        assert set(item) >= ITEM_FIELDS
        assert item["id"] != "f1"
        assert item["score"] > rec.min_similarity
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    expected = rec.related("f1", limit=5)
    assert [i["id"] for i in items] == [i.id for i in expected.items]
    assert items[0] == {**rec.article(items[0]["id"]), "score": pytest.approx(expected.items[0].score, abs=1e-6)}


def test_related_limit(client: TestClient) -> None:
    assert len(client.get("/v1/articles/f1/related?limit=2").json()["items"]) == 2
    assert len(client.get("/v1/articles/f1/related?limit=1").json()["items"]) == 1


def test_unrelated_article_gets_empty_list(client: TestClient) -> None:
    r = client.get("/v1/articles/x1/related")
    assert r.status_code == 200 and r.json()["items"] == []


# --- filters, with an oracle: a filter never returns fewer items than exist ------


@pytest.fixture(scope="module")
def short_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """k=2: almost every filter has to fall back to the on-demand search."""
    models = tmp_path_factory.mktemp("api-k2") / "models"
    train_into(models, [*TINY, *EXTRA], k=2)
    return models


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()


def oracle(rec: Recommender, source: str, keep: Callable[[dict[str, Any]], bool]) -> dict[str, float]:
    """Brute force: every article whose TF-IDF cosine is above the minimum similarity and that passes ``keep``."""
    row = rec.index_for(source)
    matrix = rec.matrix.tocsr()
    scores = np.asarray((matrix @ matrix[row].T).todense()).ravel()
    found = {}
    for i, score in enumerate(scores):
        meta = rec.metadata(i)
        if i != row and score > rec.min_similarity and keep(meta):
            found[meta["id"]] = float(score)
    return found


FILTER_CASES: list[tuple[str, str, Callable[[dict[str, Any]], bool]]] = [
    ("f1", "section=sport", lambda m: m["section"] == "sport"),
    ("f1", "section=business", lambda m: m["section"] == "business"),
    ("b1", "section=science", lambda m: m["section"] == "science"),
    ("s1", "tag=comets&tag=space", lambda m: bool({"comets", "space"} & set(m["tags"]))),
    ("f1", "tag=tickets", lambda m: "tickets" in m["tags"]),
    ("f1", "exclude=f2&exclude=f3", lambda m: m["id"] not in ("f2", "f3")),
    ("s1", "exclude=s2&exclude=s3&exclude=s4", lambda m: m["id"] not in ("s2", "s3", "s4")),
    (
        "f1",
        "published_after=2026-02-01&published_before=2026-04-30",
        lambda m: _epoch("2026-02-01") <= _epoch(m["published_at"]) <= _epoch("2026-04-30"),
    ),
    ("b2", "published_after=2026-03-01T00:00:00Z", lambda m: _epoch(m["published_at"]) >= _epoch("2026-03-01")),
    ("b2", "published_before=2026-02-01", lambda m: _epoch(m["published_at"]) <= _epoch("2026-02-01")),
    ("s1", "section=science&tag=comets&exclude=s3", lambda m: False),
]


@pytest.mark.parametrize(("source", "query", "keep"), FILTER_CASES, ids=[c[1] for c in FILTER_CASES])
def test_filters_return_every_matching_item(
    short_models: Path, source: str, query: str, keep: Callable[[dict[str, Any]], bool]
) -> None:
    rec = Recommender.load(short_models)
    expected = oracle(rec, source, keep)
    with make_client(short_models) as c:
        r = c.get(f"/v1/articles/{source}/related?limit=50&{query}")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert r.json()["collapsed"] == 0
    # The ranking may blend other signals into the lexical cosine; the set of
    # articles that pass the filter and the minimum similarity may not shrink.
    assert {i["id"] for i in items} == set(expected)
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)


def test_a_filter_finds_more_than_the_precomputed_list(short_models: Path) -> None:
    rec = Recommender.load(short_models)
    precomputed = int((rec.neighbours[rec.index_for("f1")] >= 0).sum())
    assert precomputed == 2
    with make_client(short_models) as c:
        items = c.get("/v1/articles/f1/related?limit=10&section=sport").json()["items"]
    assert len(items) > precomputed
    assert {i["section"] for i in items} == {"sport"}


# --- POST /v1/related -----------------------------------------------------------


def test_post_related_text(client: TestClient, rec: Recommender) -> None:
    payload = {"title": "Comet watch", "body": "The telescope at the observatory tracks the comet.", "limit": 3}
    r = client.post("/v1/related", json=payload)
    assert r.status_code == 200
    body = r.json()
    assert body["id"] is None and body["model_version"] == rec.version
    expected = rec.related_to_text(payload["title"], payload["body"], limit=3)
    assert [i["id"] for i in body["items"]] == [i.id for i in expected.items]
    assert all(set(i) >= ITEM_FIELDS for i in body["items"])


def test_post_related_filters_and_defaults(client: TestClient) -> None:
    text = {"title": "Comet", "body": "telescope observatory comet astronomers"}
    plain = client.post("/v1/related", json=text).json()["items"]
    assert 1 <= len(plain) <= 5
    filtered = client.post(
        "/v1/related",
        json={**text, "section": "science", "tags": ["comets"], "exclude": ["s1"], "published_after": "2026-01-01"},
    ).json()["items"]
    assert [i["id"] for i in filtered] == ["s3"]
    assert client.post("/v1/related", json={"title": "", "body": ""}).json()["items"] == []
    assert client.post("/v1/related", json={"body": "zzzz qqqq"}).json()["items"] == []


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        # One limit rule for GET and POST, with one message (params.limit_value).
        ({"title": "cup", "limit": 0}, "limit must be an integer in [1, 50], got 0"),
        ({"title": "cup", "limit": 51}, "limit must be an integer in [1, 50], got 51"),
        ({"title": "cup", "limit": "many"}, "limit must be an integer in [1, 50], got 'many'"),
        ({"title": 5}, "title: Input should be a valid string, got '5'"),
        ({"bogus": 1}, "bogus: Extra inputs are not permitted, got '1'"),
        ({"title": "cup", "published_after": "yesterday"}, "published_after must be an ISO 8601 date or datetime"),
        ({"title": "cup", "published_before": "2026-13-01"}, "published_before must be an ISO 8601 date or datetime"),
        ([1, 2], "body: Input should be a valid dictionary"),
    ],
)
def test_post_related_bad_input(client: TestClient, payload: Any, detail: str) -> None:
    r = client.post("/v1/related", json=payload)
    assert r.status_code == 422
    assert r.json()["detail"].startswith(detail)


def test_post_malformed_json_is_422(client: TestClient) -> None:
    r = client.post("/v1/related", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert "JSON decode error" in r.json()["detail"]


def test_post_non_json_is_415(client: TestClient) -> None:
    r = client.post("/v1/related", content=b"hello", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert r.json() == {"detail": "request body must be application/json, got text/plain"}
    r = client.post("/v1/related", content=b'{"title": "cup"}')
    assert r.status_code == 415
    assert r.json() == {"detail": "request body must be application/json, got none"}
    r = client.post(
        "/v1/related", content=b'{"title": "cup"}', headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert r.status_code == 200


def test_body_over_the_limit_with_content_length_is_413(client: TestClient) -> None:
    body = json.dumps({"title": "x" * MAX_BODY}).encode()
    r = client.post("/v1/related", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json() == {"detail": f"request body must be at most {MAX_BODY} bytes, got {len(body)}"}


def test_body_over_the_limit_chunked_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"title": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    r = client.post("/v1/related", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert r.status_code == 413, r.text
    assert r.json()["detail"].startswith(f"request body must be at most {MAX_BODY} bytes")


def test_body_within_the_limit_chunked_is_accepted(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"title": "comet", '
        yield b'"body": "telescope observatory"}'

    r = client.post("/v1/related", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["items"]


# --- GET /v1/articles/{id}, /v1/model, health -----------------------------------


def test_article_metadata(client: TestClient) -> None:
    r = client.get("/v1/articles/b3")
    assert r.status_code == 200
    assert r.json() == {
        "id": "b3",
        "title": "Lithium prices fall",
        "url": None,
        "excerpt": "Lithium prices fell, cutting the cost of battery cells for electric cars.",
        "image": None,
        "published_at": "2026-03-10",
        "section": "business",
        "tags": ["batteries", "commodities"],
        "author": None,
        # The record gives none: the language found at training (the corpus is English).
        "language": "en",
    }


def test_model_summary(client: TestClient, rec: Recommender) -> None:
    r = client.get("/v1/model")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {
        "version",
        "created_at",
        "format_version",
        "articles",
        "vocabulary",
        "k",
        "parameters",
        "libraries",
        "languages",
        "base_version",
        "log_seq",
        "drift",
    }
    assert body["languages"] == {"en": len(TINY) + len(EXTRA) + 3}
    assert body["version"] == body["base_version"] == rec.version
    assert body["log_seq"] == 0
    assert body["drift"] == {
        "added": 0,
        "edited": 0,
        "deleted": 0,
        "unknown_token_share": 0.0,
        "log_seq": 0,
        "base_version": rec.version,
    }
    assert body["articles"] == len(TINY) + len(EXTRA) + 3
    assert body["k"] == 5
    assert body["parameters"]["min_similarity"] == 0.01


def test_health_and_readiness(client: TestClient, rec: Recommender) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "model_version": rec.version}


# --- unknown ids and bad parameters -----------------------------------------------


@pytest.mark.parametrize("path", ["/v1/articles/nope/related", "/v1/articles/nope", "/v1/articles/nope/related.html"])
def test_unknown_id_is_404_naming_it(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"detail": "unknown article id 'nope'", "id": "nope"}


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("limit=0", "limit must be an integer in [1, 50], got 0"),
        ("limit=-3", "limit must be an integer in [1, 50], got -3"),
        ("limit=abc", "limit must be an integer in [1, 50], got 'abc'"),
        ("limit=51", "limit must be an integer in [1, 50], got 51"),
        ("limit=2.5", "limit must be an integer in [1, 50], got '2.5'"),
        ("published_after=notadate", "published_after must be an ISO 8601 date or datetime, got 'notadate'"),
        ("published_before=2026-13-01", "published_before must be an ISO 8601 date or datetime, got '2026-13-01'"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(client: TestClient, query: str, detail: str) -> None:
    r = client.get(f"/v1/articles/f1/related?{query}")
    assert r.status_code == 422
    assert r.json()["detail"] == detail


def test_limit_maximum_follows_settings(models: Path) -> None:
    with make_client(models, max_limit=3, default_limit=2) as c:
        assert len(c.get("/v1/articles/f1/related").json()["items"]) == 2
        assert c.get("/v1/articles/f1/related?limit=3").status_code == 200
        r = c.get("/v1/articles/f1/related?limit=4")
        assert r.status_code == 422
        assert r.json()["detail"] == "limit must be an integer in [1, 3], got 4"
        r = c.post("/v1/related", json={"title": "cup", "limit": 4})
        assert r.status_code == 422
        assert r.json()["detail"] == "limit must be an integer in [1, 3], got 4"


# --- no model: 503 everywhere a model is needed, never 500 --------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/readyz"),
        ("GET", "/v1/articles/f1/related"),
        ("GET", "/v1/articles/f1/related.html"),
        ("GET", "/v1/articles/f1"),
        ("GET", "/v1/model"),
        ("POST", "/v1/related"),
    ],
)
def test_no_model_is_503(empty_client: TestClient, method: str, path: str) -> None:
    kwargs: dict[str, Any] = {"json": {"title": "cup"}} if method == "POST" else {}
    r = empty_client.request(method, path, **kwargs)
    assert r.status_code == 503
    assert r.json() == {"detail": NO_MODEL}


def test_no_model_leaves_the_rest_up(empty_client: TestClient) -> None:
    assert empty_client.get("/healthz").status_code == 200
    assert empty_client.get("/metrics").status_code == 200
    page = empty_client.get("/")
    assert page.status_code == 200 and "No model loaded" in page.text
    assert empty_client.get("/widget.js").status_code == 200
    # Reloading with nothing on disk is refused, not a crash.
    r = empty_client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 409
    assert r.json()["detail"].startswith("bundle refused, still serving None: ")


def test_model_appears_after_reload(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    with make_client(models) as c:
        assert c.get("/readyz").status_code == 503
        version = train_into(models, TINY)
        r = c.post("/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200
        assert r.json() == {"model_version": version, "previous": None}
        assert c.get("/readyz").json() == {"status": "ready", "model_version": version}


# --- /metrics ------------------------------------------------------------------------


def _sample(text: str, name: str, labels: str = "") -> float | None:
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def test_metrics_prometheus_text(client: TestClient, rec: Recommender) -> None:
    for _ in range(3):
        client.get("/v1/articles/f1/related")
    client.get("/v1/articles/nope/related")
    client.get("/v1/articles/f1/related?limit=0")
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert "# TYPE recommender_http_requests_total counter" in text
    assert "# TYPE recommender_http_request_duration_seconds histogram" in text
    counts = "recommender_http_requests_total"
    assert _sample(text, counts, f'{{method="GET",route="{RELATED}",status="200"}}') == 3
    assert _sample(text, counts, f'{{method="GET",route="{RELATED}",status="404"}}') == 1
    assert _sample(text, counts, f'{{method="GET",route="{RELATED}",status="422"}}') == 1
    assert _sample(text, "recommender_http_request_duration_seconds_count", f'{{method="GET",route="{RELATED}"}}') == 5
    assert _sample(text, "recommender_model_info", f'{{version="{rec.version}"}}') == 1
    assert _sample(text, "recommender_model_articles") == len(rec)


def test_metrics_without_model_have_no_version(empty_client: TestClient) -> None:
    text = empty_client.get("/metrics").text
    assert "recommender_model_info{" not in text


# --- POST /v1/admin/reload -------------------------------------------------------------


def test_reload_needs_a_token(client: TestClient) -> None:
    r = client.post("/v1/admin/reload")
    assert r.status_code == 401
    assert r.json() == {"detail": "admin token required: send 'Authorization: Bearer <token>'"}
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.post("/v1/admin/reload", headers={"Authorization": f"Basic {TOKEN}"})
    assert r.status_code == 401


def test_reload_wrong_token_is_403(client: TestClient) -> None:
    r = client.post("/v1/admin/reload", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 403
    assert r.json() == {"detail": "wrong admin token"}


def test_reload_disabled_without_a_configured_token(models: Path) -> None:
    with make_client(models, admin_token=None) as c:
        for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):
            r = c.post("/v1/admin/reload", headers=headers)
            assert r.status_code == 404
            assert r.json() == {"detail": "reload is disabled: no admin token is configured"}
    with make_client(models, admin_token="") as c:
        assert c.post("/v1/admin/reload", headers={"Authorization": "Bearer "}).status_code == 404


def test_reload_ok(client: TestClient, rec: Recommender) -> None:
    r = client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    assert r.json() == {"model_version": rec.version, "previous": rec.version}


def damage(models: Path, version: str) -> None:
    """Flip bytes of one array of a bundle so that its checksum no longer matches."""
    target = models / version / "neighbour_scores.npy"
    data = bytearray(target.read_bytes())
    data[-4:] = b"\xff\xff\xff\xff"
    target.write_bytes(bytes(data))


def test_reload_refuses_a_damaged_bundle_and_keeps_serving(tmp_path: Path) -> None:
    models = tmp_path / "models"
    old = train_into(models, TINY)
    with make_client(models) as c:
        before = c.get("/v1/articles/f1/related").json()
        new = train_into(models, [*TINY, *EXTRA])
        assert new != old
        damage(models, new)
        r = c.post("/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 409
        detail = r.json()["detail"]
        assert detail.startswith(f"bundle refused, still serving {old}: ")
        assert "neighbour_scores.npy" in detail
        assert c.get("/readyz").json()["model_version"] == old
        assert c.get("/v1/articles/f1/related").json() == before
        # Switching back to the sound bundle is accepted again.
        set_current(models, old)
        r = c.post("/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and r.json() == {"model_version": old, "previous": old}


def test_reload_swaps_to_a_new_bundle(tmp_path: Path) -> None:
    models = tmp_path / "models"
    old = train_into(models, TINY)
    with make_client(models) as c:
        assert c.get(f"/v1/articles/{SLASH_ID}").status_code == 404
        new = train_into(models, [*TINY, *EXTRA])
        r = c.post("/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.json() == {"model_version": new, "previous": old}
        assert c.get(f"/v1/articles/{SLASH_ID}").status_code == 200
        assert c.get("/v1/articles/f1/related").json()["model_version"] == new


# --- caching ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/articles/f1/related?limit=3", "/v1/articles/f1", "/v1/articles/f1/related.html"])
def test_etag_and_not_modified(client: TestClient, rec: Recommender, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    etag = r.headers["etag"]
    assert etag.startswith(f'"{rec.version}-') and etag.endswith('"')
    assert r.headers["cache-control"] == f"public, max-age={MAX_AGE}"
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == f"public, max-age={MAX_AGE}"
    assert client.get(path, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert client.get(path, headers={"If-None-Match": '"something-else"'}).status_code == 200


def test_etag_depends_on_the_request(client: TestClient) -> None:
    a = client.get("/v1/articles/f1/related?limit=3").headers["etag"]
    b = client.get("/v1/articles/f1/related?limit=4").headers["etag"]
    c = client.get("/v1/articles/f2/related?limit=3").headers["etag"]
    assert len({a, b, c}) == 3
    assert client.get("/v1/articles/f1/related?limit=3").headers["etag"] == a


def test_etag_changes_with_the_model(tmp_path: Path) -> None:
    models = tmp_path / "models"
    train_into(models, TINY)
    with make_client(models) as c:
        etag = c.get("/v1/articles/f1/related").headers["etag"]
        train_into(models, [*TINY, *EXTRA])
        c.post("/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        r = c.get("/v1/articles/f1/related", headers={"If-None-Match": etag})
        assert r.status_code == 200 and r.headers["etag"] != etag


def test_cache_max_age_follows_settings(models: Path) -> None:
    with make_client(models, cache_max_age=0) as c:
        assert c.get("/v1/articles/f1/related").headers["cache-control"] == "public, max-age=0"
        assert c.get("/widget.js").headers["cache-control"] == "public, max-age=0"


# --- CORS -------------------------------------------------------------------------------------


def test_cors_only_for_configured_origins(client: TestClient) -> None:
    r = client.get("/v1/articles/f1/related", headers={"Origin": ORIGIN})
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "etag" in r.headers["access-control-expose-headers"].lower()
    r = client.get("/v1/articles/f1/related", headers={"Origin": "https://evil.example"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


def test_cors_preflight(client: TestClient) -> None:
    ok = client.options(
        "/v1/related",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    bad = client.options(
        "/v1/related", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert bad.status_code == 400
    assert "access-control-allow-origin" not in bad.headers


def test_no_cors_headers_without_configured_origins(models: Path) -> None:
    with make_client(models, cors_origins=[]) as c:
        r = c.get("/v1/articles/f1/related", headers={"Origin": ORIGIN})
        assert "access-control-allow-origin" not in r.headers


# --- the widget: HTML fragment, widget.js, demo page --------------------------------------------


def test_html_fragment(client: TestClient) -> None:
    r = client.get(f"/v1/articles/{SLASH_ID}/related.html")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert html.startswith('<aside class="yml-box">')
    assert "You May Also Like" in html
    assert html.count('<li class="yml-item">') == 3  # the fragment's default limit
    assert '<span class="yml-title">Comet seen from the observatory</span>' in html
    assert html.count('class="yml-excerpt"') == 3


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return parser


def test_html_fragment_escapes_everything(client: TestClient) -> None:
    r = client.get("/v1/articles/evil-0/related.html?limit=5")
    assert r.status_code == 200
    html = r.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert EVIL_TITLE not in html
    assert "javascript:" not in html.lower()
    parsed = parse_html(html)
    # Only the box's own elements, no event handlers, links and images only to http(s).
    assert {tag for tag, _ in parsed.tags} <= {"aside", "style", "h2", "ul", "li", "div", "a", "span", "p", "img"}
    for _, attrs in parsed.tags:
        assert not [name for name in attrs if name.startswith("on")]
        for name in ("href", "src"):
            if name in attrs:
                assert (attrs[name] or "").startswith(("http://", "https://", "/"))
    # The evil neighbours are listed, their titles and excerpts readable as text, without links.
    text = "".join(parsed.text)
    assert text.count(f"{EVIL_TITLE} ") == 2
    assert "<script>window.__xss = 'excerpt-0'" not in text  # evil-0 is the source, not an item
    assert "<svg onload=" in text or "<img src=x onerror=" in text
    assert html.count('<span class="yml-link"><span class="yml-title">&lt;img src=x onerror=alert(1)&gt; ') == 2


def test_html_fragment_excerpt_is_cut_at_a_word(client: TestClient) -> None:
    r = client.get("/v1/articles/f1/related.html?limit=5")
    excerpts = re.findall(r'<p class="yml-excerpt">(.*?)</p>', r.text)
    assert excerpts
    for text in excerpts:
        assert len(text) <= 100


def test_html_fragment_of_an_unrelated_article_is_empty(client: TestClient) -> None:
    r = client.get("/v1/articles/x1/related.html")
    assert r.status_code == 200 and r.text == '<aside class="yml-box yml-empty"></aside>'


def test_widget_js(client: TestClient) -> None:
    r = client.get("/widget.js")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/javascript; charset=utf-8"
    assert r.headers["cache-control"] == f"public, max-age={MAX_AGE}"
    assert "data-related-article" in r.text and "textContent" in r.text
    assert "innerHTML" not in r.text


def test_demo_page(client: TestClient, rec: Recommender) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert '<select name="article" id="article-picker"' in page
    assert page.count("<option ") == len(rec)
    first = rec.ids[0]
    assert f'<div data-related-article="{first}" data-limit="3"></div>' in page
    assert '<script src="/widget.js" async></script>' in page


def test_demo_page_picks_an_article(client: TestClient) -> None:
    page = client.get("/", params={"article": SLASH_ID}).text
    assert f'<div data-related-article="{SLASH_ID}" data-limit="3"></div>' in page
    assert f'<option value="{SLASH_ID}" selected>' in page
    assert "<h1>The comet returns to the night sky</h1>" in page
    unknown = client.get("/", params={"article": "<b>nope</b>"}).text
    assert "No article &lt;b&gt;nope&lt;/b&gt; in this model" in unknown


def test_demo_page_escapes_hostile_articles(client: TestClient) -> None:
    page = client.get("/", params={"article": "evil-0"}).text
    assert EVIL_TITLE not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "javascript:" not in page


def test_demo_image(client: TestClient) -> None:
    r = client.get("/static/demo/sport.svg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    r = client.get("/static/demo/missing.svg")
    assert r.status_code == 404 and r.json() == {"detail": "no demo image 'missing.svg'"}


def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/v1/articles/{article_id}/related", "/v1/related", "/v1/articles/{article_id}", "/v1/model"):
        assert path in spec["paths"]
    assert client.get("/docs").status_code == 200


# --- ids with '/' ---------------------------------------------------------------------------------


def test_ids_with_slashes(client: TestClient) -> None:
    r = client.get(f"/v1/articles/{SLASH_ID}/related?limit=3")
    assert r.status_code == 200
    assert r.json()["id"] == SLASH_ID
    assert [i["section"] for i in r.json()["items"]] == ["science"] * 3
    r = client.get(f"/v1/articles/{SLASH_ID}")
    assert r.status_code == 200 and r.json()["id"] == SLASH_ID
    # The widget asks with the id percent-encoded.
    r = client.get("/v1/articles/2026%2F03%2Fcomet-returns/related?limit=3")
    assert r.status_code == 200 and r.json()["id"] == SLASH_ID
    r = client.get(f"/v1/articles/s1/related?limit=50&exclude={SLASH_ID}")
    assert SLASH_ID not in [i["id"] for i in r.json()["items"]]
    r = client.get("/v1/articles/2026/03/nope/related")
    assert r.status_code == 404 and r.json()["id"] == "2026/03/nope"


def test_unmatched_route_is_404_json(client: TestClient) -> None:
    r = client.get("/v2/nothing")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
    r = client.delete("/v1/related")
    assert r.status_code == 405


def test_model_in_use_survives_a_removed_current_link(tmp_path: Path) -> None:
    models = tmp_path / "models"
    version = train_into(models, TINY)
    with make_client(models) as c:
        (models / "current").unlink()
        assert c.get("/v1/articles/f1/related").json()["model_version"] == version
        r = c.post("/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 409
        assert c.get("/readyz").json()["model_version"] == version
        shutil.rmtree(models / version)  # memory-mapped arrays stay readable on POSIX
        assert c.get("/readyz").status_code == 200


def test_post_body_not_utf8_is_a_documented_400(client: TestClient) -> None:
    r = client.post("/v1/related", content=b'{"title": "\xff\xfe"}', headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json() == {"detail": "There was an error parsing the body"}
    assert "400" in client.get("/openapi.json").json()["paths"]["/v1/related"]["post"]["responses"]
