"""In process: every worker's watch of ``models/current``, and /metrics after a reload."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recommender.api.app import create_app
from recommender.api.settings import Settings
from recommender.api.state import ModelHolder
from recommender.bundle import set_current
from recommender.errors import BundleError
from recommender.train import TrainOptions, train

from .conftest import TINY, write_jsonl

WAIT = 10.0  # a bound on waits for a condition, far above the 0.05 s watch interval


def options() -> TrainOptions:
    return TrainOptions(k=5, min_df=1, max_df=1.0, min_similarity=0.01, n_jobs=1)


def train_into(models: Path, records: list[dict]) -> str:
    corpus = write_jsonl(models.parent / f"corpus-{len(records)}.jsonl", records)
    return train([corpus], models, options(), keep=10).version


def damage(models: Path, version: str) -> None:
    target = models / version / "neighbour_scores.npy"
    data = bytearray(target.read_bytes())
    data[-4:] = b"\xff\xff\xff\xff"
    target.write_bytes(bytes(data))


def wait_for_version(client: TestClient, version: str) -> str:
    deadline = time.monotonic() + WAIT
    seen = ""
    while time.monotonic() < deadline:
        seen = client.get("/readyz").json().get("model_version", "")
        if seen == version:
            break
        time.sleep(0.01)
    return seen


def test_watcher_loads_a_new_current_link(tmp_path: Path) -> None:
    models = tmp_path / "models"
    old = train_into(models, TINY[:-1])
    settings = Settings(models_dir=models, model_watch_interval=0.05)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json()["model_version"] == old
        new = train_into(models, TINY)
        assert wait_for_version(client, new) == new
        set_current(models, old)
        assert wait_for_version(client, old) == old


def test_a_refused_bundle_is_not_retried_until_the_link_moves(tmp_path: Path) -> None:
    models = tmp_path / "models"
    old = train_into(models, TINY[:-1])
    holder = ModelHolder(models)
    assert holder.link_changed()  # nothing loaded yet
    holder.load()
    assert not holder.link_changed()
    new = train_into(models, TINY)
    damage(models, new)
    assert holder.link_changed()
    with pytest.raises(BundleError, match="checksum mismatch"):
        holder.load()
    assert holder.current is not None and holder.current.version == old
    assert not holder.link_changed()  # the watcher will not try the same link again
    set_current(models, old)
    assert holder.link_changed()
    assert holder.load().version == old


def test_metrics_show_only_the_version_served(tmp_path: Path) -> None:
    models = tmp_path / "models"
    old = train_into(models, TINY[:-1])
    with TestClient(create_app(Settings(models_dir=models, admin_token="t", model_watch_interval=0))) as client:
        new = train_into(models, TINY)
        assert client.post("/v1/admin/reload", headers={"Authorization": "Bearer t"}).status_code == 200
        text = client.get("/metrics").text
        assert re.findall(r'^recommender_model_info\{version="([^"]+)"\} 1\.0$', text, re.M) == [new]
        assert old not in text
        assert re.search(rf"^recommender_model_articles {len(TINY)}\.0$", text, re.M)
