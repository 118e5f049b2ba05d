"""The GET list routes' response cache and hand-parsed query strings."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recommender.api.app import create_app
from recommender.api.cache import ResponseCache
from recommender.api.params import parse_list_query
from recommender.errors import InvalidInputError
from recommender.train import train


def test_lru_evicts_least_recently_used() -> None:
    cache = ResponseCache(2)
    cache.put("a", b"1")
    cache.put("b", b"2")
    assert cache.get("a") == b"1"
    cache.put("c", b"3")
    assert cache.get("b") is None and cache.get("a") == b"1" and cache.get("c") == b"3"
    off = ResponseCache(0)
    off.put("a", b"1")
    assert off.get("a") is None and len(off) == 0


def test_cached_answers_are_identical_and_follow_the_model(tiny_models: Path, tiny_corpus: Path, tiny_options) -> None:
    from recommender.api.settings import Settings

    with TestClient(create_app(Settings(models_dir=tiny_models, admin_token="t"))) as client:
        first = client.get("/v1/articles/f1/related?limit=3")
        second = client.get("/v1/articles/f1/related?limit=3")
        assert first.content == second.content and first.headers["etag"] == second.headers["etag"]
        html = [client.get("/v1/articles/f1/related.html").text for _ in range(2)]
        assert html[0] == html[1] and "You May Also Like" in html[0]
        train([tiny_corpus], tiny_models, tiny_options)
        assert client.post("/v1/admin/reload", headers={"Authorization": "Bearer t"}).status_code == 200
        third = client.get("/v1/articles/f1/related?limit=3")
        assert third.json()["model_version"] != first.json()["model_version"]
        assert third.headers["etag"] != first.headers["etag"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (b"limit=0", "limit must be an integer in [1, 50], got 0"),
        (b"limit=", "limit must be an integer in [1, 50], got ''"),
        (b"explain=maybe", "explain must be a boolean (true or false), got 'maybe'"),
        (b"fallback=2", "fallback must be a boolean (true or false), got '2'"),
        (b"published_after=yesterday", "published_after must be an ISO 8601 date or datetime, got 'yesterday'"),
    ],
)
def test_query_string_rules(query: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_list_query(query, default_limit=5, max_limit=50)
    assert str(info.value) == message


def test_query_string_values() -> None:
    q = parse_list_query(
        b"limit=7&tag=A&tag=b&exclude=x%2Fy&section=sport&explain=TRUE&fallback=off", default_limit=5, max_limit=50
    )
    assert (q.limit, q.explain, q.fallback) == (7, True, False)
    assert q.filters.tags == ("a", "b") and q.filters.exclude == ("x/y",) and q.filters.section == "sport"
    assert parse_list_query(b"", default_limit=5, max_limit=50).limit == 5
