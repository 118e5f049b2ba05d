"""The change log in a shared PostgreSQL database: replay, the command line, and two replicas following one log.

Each replica has its own models directory (a copy of the same bundle), as
servers on two machines would; only the log is shared. The database is a
throwaway cluster (``postgres.py``), a new database per test.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recommender.api.app import create_app
from recommender.api.settings import Settings
from recommender.bundle import current_version
from recommender.changelog import open_log
from recommender.cli import main
from recommender.compact import compact
from recommender.recommend import Recommender
from recommender.train import TrainOptions, train

from .conftest import TINY, write_jsonl
from .postgres import Server, free_port

pytestmark = pytest.mark.slow  # a real database server

TOKEN = "replica-t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
COMET = {
    "title": "Comet returns to the observatory telescope",
    "body": "Astronomers at the observatory pointed the telescope at the comet tail again at dawn.",
    "section": "science",
    "tags": ["space", "comets"],
}
FOLLOW_DEADLINE = 30.0  # seconds: generous; the followers poll every 0.01 s here


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sqllog")
    options = TrainOptions(k=5, min_df=1, max_df=1.0, min_similarity=0.01, n_jobs=1)
    train([write_jsonl(root / "tiny.jsonl", TINY)], root / "models", options)
    return root / "models"


def replica(template: Path, folder: Path) -> Path:
    """A models directory of its own holding the same bundle (another machine's copy)."""
    return Path(shutil.copytree(template, folder, symlinks=True))


@pytest.fixture
def url(postgres_server: Server) -> str:
    return postgres_server.new_database()


def test_load_replays_the_database_log_and_writes_no_file(template: Path, tmp_path: Path, url: str) -> None:
    models = replica(template, tmp_path / "models")
    base = current_version(models)
    assert Recommender.load(models, log_url=url).version == base  # no log yet: nothing created by reading
    with open_log(models, url) as log:
        assert not log.exists()
        log.append_many([("upsert", "n1", {"id": "n1", **COMET}), ("delete", "s3", None)])
    rec = Recommender.load(models, log_url=url)
    assert rec.version == f"{base}+2" and "n1" in rec and "s3" not in rec
    assert "n1" in [item.id for item in rec.related("s2", 50).items]
    # The models directory's own log is another log: it holds nothing.
    assert not (models / "changes.sqlite").exists()
    assert Recommender.load(models).version == base


def test_compact_folds_the_database_log_and_truncates_it(template: Path, tmp_path: Path, url: str) -> None:
    models = replica(template, tmp_path / "models")
    with open_log(models, url) as log:
        log.append_many([("upsert", "n1", {"id": "n1", **COMET}), ("delete", "s3", None)])
    result = compact(models, log_url=url)
    assert result.compacted and (result.log_seq, result.changes, result.added, result.deleted) == (2, 2, 1, 1)
    with open_log(models, url) as log:
        assert log.last_seq() == 0 and list(log.since(0)) == []
    rec = Recommender.load(models, log_url=url)
    assert rec.version == result.version and "n1" in rec and "s3" not in rec


def test_the_command_line_reads_the_url_from_the_environment(
    template: Path, tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    models = replica(template, tmp_path / "models")
    monkeypatch.setenv("RECOMMENDER_LOG_URL", url)
    corpus = write_jsonl(tmp_path / "new.jsonl", [{"id": "n1", **COMET}])
    assert main(["upsert", "--corpus", str(corpus), "--models-dir", str(models)]) == 0
    assert main(["delete", "s3", "--models-dir", str(models)]) == 0
    assert capsys.readouterr().out.splitlines() == ["logged 1 upserts (seq 1-1)", "logged 1 deletes (seq 2-2)"]
    with open_log(models, url) as log:
        assert [(c.seq, c.op, c.article_id) for c in log.since(0)] == [(1, "upsert", "n1"), (2, "delete", "s3")]
    assert not (models / "changes.sqlite").exists()
    # A delete of what the shared log already deleted is refused: the CLI checks against the same log.
    assert main(["delete", "s3", "--models-dir", str(models)]) == 1
    assert "unknown article id 's3'" in capsys.readouterr().err


def client(models: Path, **settings: Any) -> TestClient:
    return TestClient(create_app(Settings(models_dir=models, admin_token=TOKEN, model_watch_interval=0, **settings)))


def wait_for(follower: TestClient, path: str, status: int) -> None:
    deadline = time.monotonic() + FOLLOW_DEADLINE
    while follower.get(path).status_code != status:
        assert time.monotonic() < deadline, f"{path} did not answer {status} within {FOLLOW_DEADLINE} s"
        time.sleep(0.01)


def test_a_write_while_the_database_is_down_is_503_and_names_no_address(template: Path, tmp_path: Path) -> None:
    down = f"postgresql://writer:pw-s3cret@127.0.0.1:{free_port()}/site"
    with client(replica(template, tmp_path / "models"), log_url=down, log_poll_interval=0) as replica_down:
        assert replica_down.get("/v1/articles/s3").status_code == 200  # reads go on from the bundle
        r = replica_down.put("/v1/articles/n1", json=COMET, headers=AUTH)
        assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
        assert r.json() == {
            "detail": "the change log's database is unavailable: the write was not acknowledged, try it again"
        }


def test_two_replicas_share_one_log(template: Path, tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    first_dir, second_dir = replica(template, tmp_path / "a"), replica(template, tmp_path / "b")
    base = current_version(first_dir)
    monkeypatch.setenv("RECOMMENDER_LOG_URL", url)  # one replica configured by the environment,
    from_env = Settings(models_dir=second_dir)
    assert from_env.log_url is not None and from_env.log_url.get_secret_value() == url
    assert "s3cret" not in repr(from_env)  # the password stays out of logs of the settings
    monkeypatch.delenv("RECOMMENDER_LOG_URL")
    with (
        client(first_dir, log_url=url, log_poll_interval=0.01) as first,  # the other by its Settings
        client(second_dir, log_poll_interval=0.01, log_url=from_env.log_url) as second,
    ):
        r = first.put("/v1/articles/n1", json=COMET, headers=AUTH)
        assert r.status_code == 201 and r.json()["seq"] == 1, r.text
        wait_for(second, "/v1/articles/n1", 200)
        assert "n1" in [item["id"] for item in second.get("/v1/articles/s2/related?limit=50").json()["items"]]
        assert second.delete("/v1/articles/s3", headers=AUTH).status_code == 204
        wait_for(first, "/v1/articles/s3", 404)
        assert first.get("/v1/model").json()["version"] == second.get("/v1/model").json()["version"] == f"{base}+2"
    for models in (first_dir, second_dir):
        assert not (models / "changes.sqlite").exists()
        # A replica that starts later replays the shared log.
        with client(models, log_url=url, log_poll_interval=0) as fresh:
            assert fresh.get("/v1/model").json()["version"] == f"{base}+2"
            assert fresh.get("/v1/articles/n1").status_code == 200 and fresh.get("/v1/articles/s3").status_code == 404
