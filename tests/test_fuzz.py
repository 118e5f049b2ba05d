"""Property-based fuzzing of the OpenAPI description with Schemathesis, in process.

Every operation of the schema gets at least 200 generated requests (valid
and invalid ones): no answer may be a 5xx, and every answer must match the
schema (documented status, content type and body).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from recommender.api.app import create_app
from recommender.api.settings import Settings
from recommender.train import train

from .conftest import TINY, write_jsonl
from .servers import evil_articles
from .test_api import EXTRA, options

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow

EXAMPLES = 200
TOKEN = "fuzz-token"
KNOWN_IDS = ["f1", "b2", "s3", "x1", "evil-0", EXTRA[0]["id"]]
OPERATIONS = [
    ("GET", "/v1/articles/{article_id}/related"),
    ("GET", "/v1/articles/{article_id}/related.html"),
    ("POST", "/v1/related"),
    ("GET", "/v1/articles/{article_id}"),
    ("GET", "/v1/model"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/v1/admin/reload"),
    ("PUT", "/v1/articles/{article_id}"),
    ("DELETE", "/v1/articles/{article_id}"),
    ("POST", "/v1/admin/articles"),
]
# The write routes change the articles: each is fuzzed on its own copy of the models.
WRITES = {("PUT", "/v1/articles/{article_id}"), ("DELETE", "/v1/articles/{article_id}"), ("POST", "/v1/admin/articles")}
TOKEN_PATHS = ("/v1/admin/reload", "/v1/admin/articles")


@schemathesis.serializer("application/x-ndjson")
def json_lines(ctx: Any, value: Any) -> bytes:
    """The batch route's body: each generated record on a line of its own."""
    records = value if isinstance(value, list) else [value]
    return "".join(json.dumps(record) + "\n" for record in records).encode()


CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
FRAGMENT = ("GET", "/v1/articles/{article_id}/related.html")
# The fragment's JSON error answers are documented as text/html (see
# test_fragment_errors_are_documented_as_json): its schema checks are done by hand.
FRAGMENT_CHECKS = [not_a_server_error, status_code_conformance]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    corpus = write_jsonl(root / "corpus.jsonl", [*TINY, *EXTRA, *evil_articles()])
    train([corpus], root / "models", options())
    return root / "models"


def app_schema(models_dir: Path, load: bool) -> Any:
    app = create_app(Settings(models_dir=models_dir, admin_token=TOKEN, max_body_bytes=65536))
    if load:
        app.state.holder.load()  # the ASGI transport does not run the lifespan
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def schema(models: Path) -> Any:
    return app_schema(models, load=True)


@pytest.fixture(scope="module")
def schema_without_model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    empty = tmp_path_factory.mktemp("fuzz-empty") / "models"
    empty.mkdir()
    return app_schema(empty, load=False)


def test_the_schema_lists_every_operation(schema: Any) -> None:
    found = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation(schema: Any, models: Path, tmp_path: Path, method: str, path: str) -> None:
    if (method, path) in WRITES:
        schema = app_schema(Path(shutil.copytree(models, tmp_path / "models", symlinks=True)), load=True)
    statuses = fuzz_operation(schema, method, path)
    assert statuses & {200, 201, 204}


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_without_a_model(schema_without_model: Any, method: str, path: str) -> None:
    statuses = fuzz_operation(schema_without_model, method, path, no_model=True)
    if path not in ("/healthz", "/metrics", "/v1/admin/reload"):
        assert 503 in statuses


def fuzz_operation(schema: Any, method: str, path: str, no_model: bool = False) -> set[int]:
    """Send at least EXAMPLES generated requests to one operation, checking every answer; their statuses.

    Without a model, 503 is the documented answer of the model routes, so the
    5xx check is replaced by "nothing in 5xx but 503".
    """
    checks = CHECKS if (method, path) != FRAGMENT else FRAGMENT_CHECKS
    if no_model:
        checks = [c for c in checks if c is not not_a_server_error]
    operation = schema[path][method]
    strategies = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
    writes = (method, path) in WRITES
    auth_header = {"Authorization": f"Bearer {TOKEN}"}
    if "{article_id}" in path:
        # Random ids are all unknown (404): also fuzz the other parameters of known articles.
        auth = auth_header if writes else None
        strategies.append(
            st.sampled_from(KNOWN_IDS).flatmap(
                lambda i: operation.as_strategy(path_parameters={"article_id": i}, headers=auth)
            )
        )
        if method == "PUT":  # random records rarely have a text: also send good ones
            strategies.append(
                st.sampled_from(KNOWN_IDS).flatmap(
                    lambda i: operation.as_strategy(
                        path_parameters={"article_id": i}, headers=auth, body={"title": "comet telescope"}
                    )
                )
            )
    if path == "/v1/admin/articles":  # random batches rarely hold a good record: also send good ones
        strategies.append(operation.as_strategy(headers=auth_header, body=[{"id": "n1", "title": "comet"}]))
    if path in TOKEN_PATHS or writes:
        # Random headers never hold the token: also send the right and a wrong one.
        strategies.append(
            st.sampled_from([f"Bearer {TOKEN}", "Bearer not-it"]).flatmap(
                lambda h: operation.as_strategy(headers={"Authorization": h})
            )
        )
    cases = st.one_of(*strategies)
    sent: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests on every run
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def fuzz(case: Any) -> None:
        response = case.call()
        sent.append(response.status_code)
        assert response.status_code < 500 or (no_model and response.status_code == 503), response.text
        case.validate_response(response, checks=checks)
        if (method, path) == FRAGMENT:
            check_fragment(response)

    fuzz()
    # Operations with a small input space make Hypothesis stop early: repeat until
    # every operation has seen its quota of requests (each round is deterministic).
    rounds = 1
    while len(sent) < EXAMPLES and rounds < EXAMPLES:
        fuzz()
        rounds += 1
    print(f"\n{method} {path}: {len(sent)} requests in {rounds} round(s), statuses {sorted(set(sent))}")
    assert len(sent) >= EXAMPLES
    assert all(status < 500 or (status == 503 and schema_has_no_model(schema)) for status in sent)
    return set(sent)


def schema_has_no_model(schema: Any) -> bool:
    return schema.app.state.holder.current is None


def check_fragment(response: Any) -> None:
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    if response.status_code == 200:
        assert content_type.startswith("text/html")
        assert response.text.startswith('<aside class="yml-box')
    else:
        assert content_type == "application/json"
        assert isinstance(response.json()["detail"], str)


def test_fragment_errors_are_documented_as_json(schema: Any) -> None:
    responses = schema.raw_schema["paths"]["/v1/articles/{article_id}/related.html"]["get"]["responses"]
    for status in ("404", "422", "503"):
        assert set(responses[status]["content"]) == {"application/json"}, status
