"""Input rules of the API in process: JSON numbers, query strings, the response cache, auth, HEAD."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recommender.api.app import create_app
from recommender.api.cache import ResponseCache
from recommender.api.settings import Settings
from recommender.train import TrainOptions, train

from .conftest import TINY, write_jsonl

TOKEN = "t0ken"
LIST_PARAMS = "limit, section, tag, exclude, published_after, published_before, language, explain, fallback"
FRAGMENT_PARAMS = "limit, section, tag, exclude, language"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("api-input")
    options = TrainOptions(k=5, min_df=1, max_df=1.0, min_similarity=0.01, n_jobs=1)
    train([write_jsonl(root / "tiny.jsonl", TINY)], root / "models", options)
    return root / "models"


def make_client(models: Path, **overrides: Any) -> TestClient:
    return TestClient(create_app(Settings(models_dir=models, admin_token=TOKEN, **overrides)))


@pytest.fixture
def client(models: Path) -> Iterator[TestClient]:
    with make_client(models) as c:
        yield c


# --- item 4: NaN and Infinity in a POST body ------------------------------------------


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"title":"jobs","limit":NaN}', "limit must be an integer in [1, 50], got nan"),
        (b'{"title":"jobs","limit":Infinity}', "limit must be an integer in [1, 50], got inf"),
        (b'{"title":"jobs","limit":-Infinity}', "limit must be an integer in [1, 50], got -inf"),
        (b'{"title":"jobs","explain":NaN}', "explain: Input should be a valid boolean, got 'nan'"),
        (b'{"title":"jobs","fallback":Infinity}', "fallback: Input should be a valid boolean, got 'inf'"),
        (b'{"title":NaN}', "title: Input should be a valid string, got 'nan'"),
        (b'{"title":"jobs","tags":[NaN]}', "tags.0: Input should be a valid string, got 'nan'"),
        (b'{"title":"jobs","bogus":NaN}', "bogus: Extra inputs are not permitted, got 'nan'"),
    ],
)
def test_non_finite_numbers_are_422_naming_the_field(client: TestClient, body: bytes, detail: str) -> None:
    r = client.post("/v1/related", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["detail"] == detail


# --- the limit: one rule, one message, GET and POST -------------------------------------------


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ({"limit": 0}, "limit must be an integer in [1, 50], got 0"),
        ({"limit": 51}, "limit must be an integer in [1, 50], got 51"),
        ({"limit": "many"}, "limit must be an integer in [1, 50], got 'many'"),
        ({"limit": "3"}, "limit must be an integer in [1, 50], got '3'"),
        ({"limit": 2.5}, "limit must be an integer in [1, 50], got 2.5"),
        ({"limit": True}, "limit must be an integer in [1, 50], got True"),
    ],
)
def test_post_limit_rule_is_the_get_rule(client: TestClient, payload: dict[str, Any], detail: str) -> None:
    r = client.post("/v1/related", json={"title": "cup", **payload})
    assert r.status_code == 422
    assert r.json()["detail"] == detail


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("3_0", "'3_0'"),
        ("%203", "' 3'"),
        ("3%20", "'3 '"),
        ("%2B3", "'+3'"),
        ("%D9%A3", "'٣'"),  # ARABIC-INDIC DIGIT THREE: int() accepts it
        ("%EF%BC%93", "'３'"),  # FULLWIDTH DIGIT THREE
        ("0x3", "'0x3'"),
    ],
)
@pytest.mark.parametrize("route", ["related", "related.html"])
def test_get_limit_takes_plain_ascii_digits_only(client: TestClient, route: str, value: str, shown: str) -> None:
    r = client.get(f"/v1/articles/f1/{route}?limit={value}")
    assert r.status_code == 422
    assert r.json()["detail"] == f"limit must be an integer in [1, 50], got {shown}"


def test_get_limit_with_leading_zeros_is_a_number(client: TestClient) -> None:
    assert len(client.get("/v1/articles/f1/related?limit=03").json()["items"]) == 3


# --- item 13: unknown parameters, the normalised cache key, a cache bounded in bytes ------------------


@pytest.mark.parametrize(
    ("route", "query", "detail"),
    [
        ("related", "v=1", f"unknown query parameter 'v'; allowed: {LIST_PARAMS}"),
        ("related", "limit=3&v=1&zz=2", f"unknown query parameters 'v', 'zz'; allowed: {LIST_PARAMS}"),
        ("related", "Limit=3", f"unknown query parameter 'Limit'; allowed: {LIST_PARAMS}"),
        ("related.html", "explain=true", f"unknown query parameter 'explain'; allowed: {FRAGMENT_PARAMS}"),
        (
            "related.html",
            "published_after=2026-01-01",
            f"unknown query parameter 'published_after'; allowed: {FRAGMENT_PARAMS}",
        ),
    ],
)
def test_unknown_query_parameters_are_422_naming_them(client: TestClient, route: str, query: str, detail: str) -> None:
    r = client.get(f"/v1/articles/f1/{route}?{query}")
    assert r.status_code == 422
    assert r.json()["detail"] == detail


def test_article_route_refuses_query_parameters(client: TestClient) -> None:
    r = client.get("/v1/articles/f1?v=1")
    assert r.status_code == 422
    assert r.json()["detail"] == "unknown query parameter 'v'; allowed: none"


def test_cache_key_and_etag_follow_the_parsed_query(models: Path) -> None:
    with make_client(models) as c:
        responses = c.app.state.responses  # type: ignore[attr-defined]
        first = c.get("/v1/articles/f1/related?limit=3&tag=Football&explain=false")
        assert first.status_code == 200
        assert len(responses) == 1
        # The same request spelled differently: same entry, same ETag.
        for spelling in ("tag=football&limit=03", "tag=FOOTBALL&limit=3&fallback=no", "limit=3&tag=%20football"):
            again = c.get(f"/v1/articles/f1/related?{spelling}")
            assert again.status_code == 200
            assert again.headers["etag"] == first.headers["etag"], spelling
            assert again.content == first.content
        assert len(responses) == 1
        assert c.get("/v1/articles/f1/related?limit=4&tag=football").headers["etag"] != first.headers["etag"]
        # 6,500 unknown-parameter variants add nothing.
        for n in range(200):
            assert c.get(f"/v1/articles/f1/related?limit=3&v={n}").status_code == 422
        assert len(responses) == 2


def test_response_cache_is_bounded_in_bytes(models: Path) -> None:
    with make_client(models, response_cache_bytes=20_000) as c:
        responses = c.app.state.responses  # type: ignore[attr-defined]
        for n in range(200):
            assert c.get(f"/v1/articles/f1/related?exclude=nothing-{n}").status_code == 200
        assert 0 < responses.bytes <= 20_000
        assert len(responses) < 200


def test_lru_evicts_by_bytes() -> None:
    cache = ResponseCache(max_entries=100, max_bytes=1000)
    cache.put(b"a", b"x" * 300)
    cache.put(b"b", b"x" * 300)
    assert cache.get(b"a") is not None
    cache.put(b"c", b"x" * 300)
    assert cache.bytes <= 1000
    assert cache.get(b"b") is None and cache.get(b"a") is not None and cache.get(b"c") is not None
    cache.put(b"huge", b"x" * 5000)  # larger than the whole cache: not kept, nothing evicted for it
    assert cache.get(b"huge") is None and len(cache) == 2


# --- item 14: the bearer scheme is case-insensitive; HEAD where GET is allowed ---------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(client: TestClient, scheme: str) -> None:
    r = client.post("/v1/admin/reload", headers={"Authorization": f"{scheme} {TOKEN}"})
    assert r.status_code == 200, r.text
    r = client.post("/v1/admin/reload", headers={"Authorization": f"{scheme} wrong"})
    assert r.status_code == 403 and r.json() == {"detail": "wrong admin token"}


def test_other_schemes_are_401(client: TestClient) -> None:
    for value in (f"Basic {TOKEN}", TOKEN, f"Bearer{TOKEN}"):
        r = client.post("/v1/admin/reload", headers={"Authorization": value})
        assert r.status_code == 401
        assert r.json() == {"detail": "admin token required: send 'Authorization: Bearer <token>'"}


HEAD_PATHS = [
    "/v1/articles/f1/related?limit=3",
    "/v1/articles/f1/related.html",
    "/v1/articles/f1",
    "/v1/articles/nope/related",
    "/v1/articles/f1/related?limit=0",
    "/v1/model",
    "/healthz",
    "/readyz",
    "/widget.js",
    "/",
    "/static/demo/sport.svg",
    "/openapi.json",
]


@pytest.mark.parametrize("path", HEAD_PATHS)
def test_head_answers_like_get_without_a_body(client: TestClient, path: str) -> None:
    got = client.get(path)
    head = client.head(path)
    assert head.status_code == got.status_code
    assert head.content == b""
    for name in ("content-type", "content-length", "etag", "cache-control"):
        assert head.headers.get(name) == got.headers.get(name), name


def test_head_on_metrics_and_post_only_routes(client: TestClient) -> None:
    r = client.head("/metrics")
    assert r.status_code == 200 and r.content == b"" and r.headers["content-type"].startswith("text/plain")
    assert client.head("/v1/related").status_code == 405
    assert client.head("/v1/admin/reload").status_code == 405
