"""Live writes through the HTTP API in process: PUT, DELETE and the batch route, every refusal and its message.

Each test writes into its own copy of a tiny trained models directory. A
refused write must leave the change log as it was (its last sequence number
unchanged).
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recommender.api.app import create_app
from recommender.api.settings import Settings
from recommender.bundle import current_version
from recommender.changelog import ChangeLog
from recommender.train import TrainOptions, train
from recommender.values import Filters

from .conftest import TINY, write_jsonl

TOKEN = "live-t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BODY = 4096
MAX_BATCH = 16384
JSONL = {**AUTH, "Content-Type": "application/x-ndjson"}
ID_RULE = "id must be at most 200 printable characters"
COMET = {
    "title": "Comet returns to the observatory telescope",
    "body": "Astronomers at the observatory pointed the telescope at the comet tail again at dawn.",
    "section": "science",
    "tags": ["space", "comets"],
    "published_at": "2026-06-01",
}
FOLLOW_DEADLINE = 30.0  # seconds: generous; the follower polls every 0.01 s here


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("live-api")
    options = TrainOptions(k=5, min_df=1, max_df=1.0, min_similarity=0.01, n_jobs=1)
    train([write_jsonl(root / "tiny.jsonl", TINY)], root / "models", options)
    return root / "models"


@pytest.fixture
def models(template: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(template, tmp_path / "models", symlinks=True))


def make_client(models: Path, **overrides: Any) -> TestClient:
    settings: dict[str, Any] = {
        "models_dir": models,
        "admin_token": TOKEN,
        "max_body_bytes": MAX_BODY,
        "max_batch_bytes": MAX_BATCH,
        "model_watch_interval": 0,
        "log_poll_interval": 0,
    }
    settings.update(overrides)
    return TestClient(create_app(Settings(**settings)))


@pytest.fixture
def client(models: Path) -> Iterator[TestClient]:
    with make_client(models) as c:
        yield c


def last_seq(models: Path) -> int:
    with ChangeLog(models) as log:
        return log.last_seq()


def put(client: TestClient, article_id: str, record: dict[str, Any]) -> Any:
    return client.put(f"/v1/articles/{article_id}", json=record, headers=AUTH)


def related_ids(client: TestClient, article_id: str) -> list[str]:
    r = client.get(f"/v1/articles/{article_id}/related?limit=50")
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


# --- refusals: the exact status and message, and nothing logged ----------------------------


LONG_ID = "x" * 201


@pytest.mark.parametrize(
    ("path_id", "body", "status", "detail"),
    [
        ("n1", b'{"title": "comet"', 422, "request body is not valid JSON: JSON decode error at character 17: "),
        ("n1", b"", 422, "request body is empty: send the article as a JSON object"),
        ("n1", b"  \n", 422, "request body is empty: send the article as a JSON object"),
        ("n1", b'["comet"]', 422, "the article must be a JSON object, got list"),
        ("n1", b'{"title": 5}', 422, "title must be a string, got int"),
        ("n1", b'{"title": "comet", "tags": 5}', 422, "tags must be a list or a comma-separated string, got int"),
        ("n1", b'{"title": "comet", "tags": [1]}', 422, "each tag must be a string, got int"),
        ("n1", b'{"title": "comet", "published_at": 2026}', 422, "published_at must be an ISO 8601 string, got int"),
        ("n1", b'{"title": "", "body": ""}', 422, "article 'n1' has no text: title and body are both empty"),
        ("n1", b'{"id": "", "title": "comet"}', 422, "missing id: id is empty"),
        ("n1", b'{"id": true, "title": "comet"}', 422, "id must be a string or an integer, got bool"),
        ("n1", b'{"id": "n2", "title": "comet"}', 422, "id in the body ('n2') must equal the id in the path ('n1')"),
        (LONG_ID, b'{"title": "comet"}', 422, f"{ID_RULE}, got 201 characters: {'x' * 20!r}..."),
        ("%07bell", b'{"title": "comet"}', 422, f"{ID_RULE}, got '\\x07bell'"),
        ("%20n1", b'{"title": "comet"}', 422, "id in the path must not start or end with spaces, got ' n1'"),
        ("n1", b'{"title": "\xff\xfe"}', 400, "There was an error parsing the body"),
    ],
)
def test_put_refusals(client: TestClient, models: Path, path_id: str, body: bytes, status: int, detail: str) -> None:
    r = client.put(f"/v1/articles/{path_id}", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == status, r.text
    if detail.endswith(": "):  # the JSON decoder's own reason follows
        assert r.json()["detail"].startswith(detail)
    else:
        assert r.json()["detail"] == detail
    assert last_seq(models) == 0
    assert client.get("/v1/model").json()["log_seq"] == 0


def test_put_of_another_media_type_is_415(client: TestClient, models: Path) -> None:
    r = client.put("/v1/articles/n1", content=b'{"title": "comet"}', headers={**AUTH, "Content-Type": "text/plain"})
    assert r.status_code == 415
    assert r.json() == {"detail": "request body must be application/json, got text/plain"}
    assert last_seq(models) == 0


def test_put_over_the_body_limit_is_413(client: TestClient, models: Path) -> None:
    body = b'{"title": "comet", "body": "' + b"x" * MAX_BODY + b'"}'
    r = client.put("/v1/articles/n1", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json() == {"detail": f"request body must be at most {MAX_BODY} bytes, got {len(body)}"}
    assert last_seq(models) == 0


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/v1/articles/n1", b'{"title": "comet"}'),
        ("DELETE", "/v1/articles/f1", None),
        ("POST", "/v1/admin/articles", b'{"id": "n1", "title": "comet"}\n'),
    ],
)
def test_writes_need_the_admin_token(models: Path, method: str, path: str, body: bytes | None) -> None:
    headers = {"Content-Type": "application/json"} if body else {}
    with make_client(models) as c:
        r = c.request(method, path, content=body, headers=headers)
        assert r.status_code == 401
        assert r.json() == {"detail": "admin token required: send 'Authorization: Bearer <token>'"}
        assert r.headers["www-authenticate"] == "Bearer"
        r = c.request(method, path, content=body, headers={**headers, "Authorization": "Bearer wrong"})
        assert r.status_code == 403
        assert r.json() == {"detail": "wrong admin token"}
    with make_client(models, admin_token=None) as c:
        r = c.request(method, path, content=body, headers={**headers, **AUTH})
        assert r.status_code == 404
        assert r.json() == {"detail": "writing articles is disabled: no admin token is configured"}
    assert last_seq(models) == 0
    with make_client(models) as c:
        assert "f1" in related_ids(c, "f2") and c.get("/v1/articles/n1").status_code == 404


def test_delete_of_an_unknown_id_is_404_and_logs_nothing(client: TestClient, models: Path) -> None:
    r = client.delete("/v1/articles/nope", headers=AUTH)
    assert r.status_code == 404
    assert r.json() == {"detail": "unknown article id 'nope'", "id": "nope"}
    assert last_seq(models) == 0


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b'{"id": "n1", "title": "comet"}\n{"id": "n2", "title": 5}\n', 422, "line 2: title must be a string, got int"),
        (b'{"id": "n1", "title": "comet"}\n\n{"title": "comet"}\n', 422, "line 3: missing id"),
        (
            b'{"id": "n1", "title": "comet"}\n{"id": "n1"\n',
            422,
            "line 2: malformed JSON: Expecting ',' delimiter at column 12",
        ),
        (b'{"id": "n1", "title": "comet"}\n[1]\n', 422, "line 2: a record must be a JSON object, got list"),
        (
            b'{"id": "n1", "title": "a"}\n{"id": "n1", "title": "b"}',
            422,
            "line 2: duplicate id 'n1' (first seen at line 1)",
        ),
        (
            b'{"id": "n1", "title": "a"}\n{"id": "' + b"y" * 201 + b'", "title": "b"}',
            422,
            f"line 2: {ID_RULE}, got 201 characters: {'y' * 20!r}...",
        ),
        (b"\n \n", 422, "request body holds no article: send one JSON object per line"),
        (
            b'{"id": "n1", "title": "a"}\n{"id": "n2", "title": "\xff"}\n',
            400,
            "line 2: byte 0xff at column 24 is not valid UTF-8",
        ),
    ],
)
def test_a_bad_batch_writes_nothing(client: TestClient, models: Path, body: bytes, status: int, detail: str) -> None:
    r = client.post("/v1/admin/articles", content=body, headers=JSONL)
    assert r.status_code == status, r.text
    assert r.json() == {"detail": detail}
    assert last_seq(models) == 0
    assert client.get("/v1/articles/n1").status_code == 404


def test_batch_limits_and_media_types(client: TestClient, models: Path) -> None:
    line = b'{"id": "n%d", "title": "comet telescope", "body": "' + b"x" * 200 + b'"}\n'
    body = b"".join(line % n for n in range(30))
    assert MAX_BODY < len(body) <= MAX_BATCH  # over a single write's limit, within the batch's
    r = client.post("/v1/admin/articles", content=body, headers=JSONL)
    assert r.status_code == 200, r.text
    too_big = body * 3
    r = client.post("/v1/admin/articles", content=too_big, headers=JSONL)
    assert r.status_code == 413
    assert r.json() == {"detail": f"request body must be at most {MAX_BATCH} bytes, got {len(too_big)}"}
    r = client.post("/v1/admin/articles", content=body, headers={**AUTH, "Content-Type": "text/plain"})
    assert r.status_code == 415
    expected = "application/x-ndjson or application/ndjson or application/jsonl or application/x-jsonlines"
    assert r.json() == {"detail": f"request body must be {expected} or application/json, got text/plain"}
    r = client.post("/v1/admin/articles", content=line % 99, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 200
    assert last_seq(models) == 31


# --- writes that succeed --------------------------------------------------------------------


def test_put_new_then_replace_then_delete(client: TestClient, models: Path) -> None:
    base = current_version(models)
    before = client.get("/v1/articles/s1/related")
    etag = before.headers["etag"]
    assert before.json()["model_version"] == base

    r = put(client, "n1", COMET)
    assert r.status_code == 201
    assert r.json() == {"id": "n1", "seq": 1, "model_version": f"{base}+1"}
    assert r.headers["location"] == "/v1/articles/n1"
    article = client.get("/v1/articles/n1").json()
    assert article["title"] == COMET["title"] and article["tags"] == COMET["tags"]
    own = related_ids(client, "n1")
    assert own and own[0].startswith("s")  # a comet article: the science articles first
    assert "n1" in related_ids(client, "s3")  # the closest science article takes it into its box
    after = client.get("/v1/articles/s1/related", headers={"If-None-Match": etag})
    assert after.status_code == 200  # the old ETag no longer matches
    assert after.headers["etag"] != etag and after.json()["model_version"] == f"{base}+1"

    r = put(client, "n1", {**COMET, "id": "n1", "title": "Comet tail seen again"})
    assert r.status_code == 200
    assert r.json() == {"id": "n1", "seq": 2, "model_version": f"{base}+2"}
    assert "location" not in r.headers
    assert client.get("/v1/articles/n1").json()["title"] == "Comet tail seen again"

    r = client.delete("/v1/articles/n1", headers=AUTH)
    assert r.status_code == 204 and r.content == b""
    assert client.get("/v1/articles/n1").status_code == 404
    assert client.get("/v1/articles/n1/related").status_code == 404
    assert client.delete("/v1/articles/n1", headers=AUTH).status_code == 404
    for record in TINY:
        assert "n1" not in related_ids(client, record["id"])
    summary = client.get("/v1/model").json()
    assert summary["version"] == f"{base}+3" and summary["base_version"] == base and summary["log_seq"] == 3
    assert summary["articles"] == len(TINY)
    assert last_seq(models) == 3


def test_delete_a_trained_article(client: TestClient, models: Path) -> None:
    assert "f1" in related_ids(client, "f2")
    assert client.delete("/v1/articles/f1", headers=AUTH).status_code == 204
    for record in TINY[1:]:
        assert "f1" not in related_ids(client, record["id"])
    assert client.get("/v1/model").json()["drift"]["deleted"] == 1


def test_put_takes_an_integer_id_and_the_path_id_when_the_body_has_none(client: TestClient) -> None:
    assert put(client, "42", {**COMET, "id": 42}).status_code == 201
    assert client.get("/v1/articles/42").json()["id"] == "42"
    assert put(client, "2026/06/comet", COMET).status_code == 201  # ids may hold slashes
    assert client.get("/v1/articles/2026/06/comet").json()["title"] == COMET["title"]


def test_batch_counts_new_and_replaced_articles(client: TestClient, models: Path) -> None:
    base = current_version(models)
    body = b'{"id": "f1", "title": "United lose the cup final"}\n{"id": "n1", "title": "Comet", "body": "telescope"}\n'
    r = client.post("/v1/admin/articles", content=body, headers=JSONL)
    assert r.status_code == 200
    assert r.json() == {
        "model_version": f"{base}+2",
        "articles": 2,
        "created": 1,
        "replaced": 1,
        "first_seq": 1,
        "last_seq": 2,
    }
    assert client.get("/v1/articles/f1").json()["title"] == "United lose the cup final"
    drift = client.get("/v1/model").json()["drift"]
    assert (drift["added"], drift["edited"], drift["deleted"], drift["log_seq"]) == (1, 1, 0, 2)


# --- one state for every worker -------------------------------------------------------------


def wait_for(client: TestClient, path: str, status: int) -> None:
    deadline = time.monotonic() + FOLLOW_DEADLINE
    while client.get(path).status_code != status:
        assert time.monotonic() < deadline, f"{path} did not answer {status} within {FOLLOW_DEADLINE} s"
        time.sleep(0.01)


def test_a_second_worker_follows_the_log_and_a_new_one_replays_it(models: Path) -> None:
    base = current_version(models)
    with make_client(models) as first, make_client(models, log_poll_interval=0.01) as second:
        assert put(first, "n1", COMET).status_code == 201
        wait_for(second, "/v1/articles/n1", 200)
        assert "n1" in related_ids(second, "s3")
        assert first.delete("/v1/articles/s3", headers=AUTH).status_code == 204
        wait_for(second, "/v1/articles/s3", 404)
        assert second.get("/v1/model").json()["version"] == f"{base}+2"
        # A delete on the follower of what it has not applied yet: it catches up first.
        assert put(first, "n2", COMET).status_code == 201
        assert second.delete("/v1/articles/n2", headers=AUTH).status_code == 204
    with make_client(models) as fresh:
        assert fresh.get("/v1/model").json()["version"] == f"{base}+4"
        assert fresh.get("/v1/articles/n1").status_code == 200
        assert fresh.get("/v1/articles/s3").status_code == 404
        assert fresh.get("/v1/articles/n2").status_code == 404
        r = fresh.post("/v1/admin/reload", headers=AUTH)  # a reload replays the log too
        assert r.status_code == 200 and r.json()["model_version"] == f"{base}+4"
        assert fresh.get("/v1/articles/n1").status_code == 200


def test_a_worker_checkpoints_every_n_changes_and_a_new_one_restores_it(models: Path) -> None:
    base = current_version(models)
    with make_client(models, log_poll_interval=0.01, checkpoint_every=2) as first:
        assert put(first, "n1", COMET).status_code == 201
        assert first.delete("/v1/articles/s3", headers=AUTH).status_code == 204
        deadline = time.monotonic() + 10
        while not (models / "live" / f"{base}+2" / "state.json").is_file() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (models / "live" / f"{base}+2" / "state.json").is_file()
        assert put(first, "n2", COMET).status_code == 201
    with make_client(models) as fresh:
        # Restored at +2, then +3 replayed from the log.
        assert fresh.get("/v1/model").json()["version"] == f"{base}+3"
        assert fresh.get("/v1/articles/n1").status_code == 200 and fresh.get("/v1/articles/n2").status_code == 200
        assert fresh.get("/v1/articles/s3").status_code == 404
        assert "n1" in related_ids(fresh, "s2")


def test_the_write_routes_are_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    put_doc = paths["/v1/articles/{article_id}"]["put"]
    assert {"200", "201", "400", "401", "403", "404", "413", "415", "422"} <= set(put_doc["responses"])
    assert "application/json" in put_doc["requestBody"]["content"]
    assert {"204", "401", "403", "404"} <= set(paths["/v1/articles/{article_id}"]["delete"]["responses"])
    batch = paths["/v1/admin/articles"]["post"]
    assert "application/x-ndjson" in batch["requestBody"]["content"]
    assert {"200", "401", "413", "415", "422"} <= set(batch["responses"])


@pytest.mark.slow
def test_the_service_compacts_on_a_schedule(models: Path) -> None:
    base = current_version(models)
    with make_client(models, model_watch_interval=0.05, compact_interval=0.5) as client:
        assert put(client, "n1", COMET).status_code == 201
        deadline = time.monotonic() + FOLLOW_DEADLINE
        while (summary := client.get("/v1/model").json())["base_version"] == base:
            assert time.monotonic() < deadline, "no compaction within the deadline"
            time.sleep(0.05)
        # The new bundle holds the write: served without a change on top of it.
        assert summary["version"] == summary["base_version"] == current_version(models)
        assert summary["log_seq"] == 1 and summary["drift"]["added"] == 0
        assert client.get("/v1/articles/n1").json()["title"] == COMET["title"]
        assert put(client, "n2", COMET).status_code == 201
        assert client.get("/v1/model").json()["version"] == f"{summary['base_version']}+2"


def test_cached_lists_stay_right_across_writes_elsewhere(models: Path) -> None:
    """A list cached by its own version is served again after unrelated writes, and never once it changed."""
    rng = random.Random(5)
    texts = [dict(r) for r in TINY] + [COMET]
    queries = ["limit=3", "limit=2&section=sport", "limit=50", "limit=3&fallback=true", "limit=3&explain=true"]
    with make_client(models) as client:
        hits_before = client.app.state.responses.hits
        for step in range(30):
            live = sorted(client.app.state.holder.current.index_of)
            if step % 5 == 4:
                assert client.delete(f"/v1/articles/{rng.choice(live)}", headers=AUTH).status_code == 204
            else:
                source = rng.choice(texts)
                target = rng.choice(live) if step % 3 == 0 else f"new-{step}"
                record = {k: v for k, v in source.items() if k != "id"}
                record["body"] = f"{record.get('body', '')} {rng.choice(texts)['title']}"
                assert put(client, target, record).status_code in (200, 201)
            rec = client.app.state.holder.current
            for article_id in sorted(rec.index_of):
                for query in queries:
                    got = client.get(f"/v1/articles/{article_id}/related?{query}").json()
                    params = dict(p.split("=") for p in query.split("&"))
                    want = rec.related(
                        article_id,
                        int(params["limit"]),
                        Filters.build(section=params.get("section")),
                        fallback="fallback" in params,
                        explain="explain" in params,
                    )
                    assert got["model_version"] == rec.version
                    assert [(i["id"], i["score"]) for i in got["items"]] == [
                        (i.id, round(i.score, 6)) for i in want.items
                    ], (step, article_id, query)
        # Lists untouched by a write were served from the cache after it.
        assert client.app.state.responses.hits > hits_before + 100
