"""Bundles in shared storage (fsspec ``memory://`` and ``file://``): trained to a URL, served by stateless replicas.

Replicas here are in-process apps, each with its own cache folder; the real
processes are in ``test_remote_serve.py``.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recommender.api.app import create_app
from recommender.api.routes import NO_MODEL
from recommender.api.settings import Settings
from recommender.bundle import MANIFEST, current_version
from recommender.cli import main
from recommender.errors import BundleError
from recommender.recommend import Recommender
from recommender.remote import POINTER, RemoteStore, is_url
from recommender.train import TrainOptions, train

from .conftest import TINY, write_jsonl

TOKEN = "remote-t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WAIT = 10.0  # a bound on waits, far above the 0.05 s watch interval
DAMAGED = "checksum mismatch: the bundle is damaged or was modified"
IDS = [str(r["id"]) for r in TINY]


def options() -> TrainOptions:
    return TrainOptions(k=5, min_df=1, max_df=1.0, min_similarity=0.01, n_jobs=1)


@pytest.fixture(params=["memory", "file"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store: a fresh folder of fsspec's in-process memory filesystem, or a local folder as file://."""
    if request.param == "file":
        yield (tmp_path / "store").as_uri()
        return
    found = f"memory://recommender-{uuid.uuid4().hex}"
    yield found
    store = RemoteStore(found)
    if store.fs.exists(store.root):
        store.fs.rm(store.root, recursive=True)


def train_to(url: str, tmp_path: Path, records: list[dict[str, Any]], **kwargs: Any) -> str:
    corpus = write_jsonl(tmp_path / f"corpus-{uuid.uuid4().hex[:6]}.jsonl", records)
    return train([corpus], url, options(), **kwargs).version


def replica(url: str, cache: Path, **overrides: Any) -> TestClient:
    settings: dict[str, Any] = {
        "models_url": url,
        "cache_dir": cache,
        "admin_token": TOKEN,
        "model_watch_interval": 0.05,
        "log_poll_interval": 0,
    }
    settings.update(overrides)
    return TestClient(create_app(Settings(**settings)))


def lists(client: TestClient) -> dict[str, Any]:
    """Every article's related list, as served."""
    return {i: client.get(f"/v1/articles/{i}/related", params={"limit": 5}).json() for i in IDS}


def served(client: TestClient) -> str:
    return str(client.get("/readyz").json().get("model_version", ""))


def wait_for(client: TestClient, version: str) -> str:
    deadline = time.monotonic() + WAIT
    seen = served(client)
    while seen != version and time.monotonic() < deadline:
        time.sleep(0.01)
        seen = served(client)
    return seen


def flip_a_byte(store: RemoteStore, path: str) -> None:
    data = bytearray(store.fs.cat_file(path))
    data[-1] ^= 0xFF
    store.fs.pipe_file(path, bytes(data))


def test_is_url() -> None:
    assert is_url("s3://bucket/models") and is_url("file:///srv/models") and is_url("simplecache::s3://b/m")
    assert not is_url("models") and not is_url("/srv/models") and not is_url("C:\\models")
    assert not is_url(Path("s3://bucket"))  # a Path is a folder, whatever its name


def test_training_uploads_the_bundle_then_names_it_in_current(url: str, tmp_path: Path) -> None:
    result = train([write_jsonl(tmp_path / "tiny.jsonl", TINY)], url, options())
    store = RemoteStore(url)
    assert result.folder == f"{url}/{result.version}"
    assert store.current() == result.version
    assert store.fs.cat_file(store.root + "/" + POINTER) == (result.version + "\n").encode()
    names = sorted(p.rsplit("/", 1)[-1] for p in store.fs.ls(f"{store.root}/{result.version}", detail=False))
    local = tmp_path / "local"
    train([tmp_path / "tiny.jsonl"], local, options())
    assert names == sorted(p.name for p in (local / current_version(local)).iterdir())  # type: ignore[operator]
    # Nothing but the bundle and the pointer: no staged CURRENT.tmp-*, no temporary folder.
    top = sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in store.fs.ls(store.root or "/", detail=False))
    assert top == sorted([POINTER, result.version])


def test_training_keeps_the_newest_versions_in_the_store(url: str, tmp_path: Path) -> None:
    versions = [train_to(url, tmp_path, TINY[: len(TINY) - n], keep=2) for n in range(3)]
    store = RemoteStore(url)
    assert store.versions() == versions[1:]
    assert store.current() == versions[-1]


def test_two_replicas_serve_the_same_lists_and_follow_a_new_training(url: str, tmp_path: Path) -> None:
    first = train_to(url, tmp_path, TINY[:-1])
    with replica(url, tmp_path / "cache-a") as a, replica(url, tmp_path / "cache-b") as b:
        assert served(a) == served(b) == first
        before = lists(a)
        assert before == lists(b)
        assert any(body.get("items") for body in before.values())
        second = train_to(url, tmp_path, TINY)
        assert wait_for(a, second) == second
        assert wait_for(b, second) == second
        assert lists(a) == lists(b) != before
    # Each cache is a models directory of its own, loadable like any local one.
    for cache in (tmp_path / "cache-a", tmp_path / "cache-b"):
        assert current_version(cache) == second
        assert Recommender.load(cache, replay=False).version == second


def test_a_damaged_remote_file_is_refused_like_a_local_one_and_the_old_model_serves(url: str, tmp_path: Path) -> None:
    first = train_to(url, tmp_path, TINY[:-1])
    # The next bundle is built locally, uploaded, damaged in the store, and only then made current.
    local = tmp_path / "local"
    second = train_to(str(local), tmp_path, TINY)
    store = RemoteStore(url)
    store.upload(local / second)
    flip_a_byte(store, f"{store.root}/{second}/neighbour_scores.npy")
    flip_a_byte_local = local / second / "neighbour_scores.npy"
    flip_a_byte_local.write_bytes(store.fs.cat_file(f"{store.root}/{second}/neighbour_scores.npy"))
    with pytest.raises(BundleError) as refused_locally:
        Recommender.load(local, second)
    assert str(refused_locally.value) == f"{local / second / 'neighbour_scores.npy'}: {DAMAGED}"

    cache = tmp_path / "cache"
    with replica(url, cache, model_watch_interval=0) as client:
        assert served(client) == first
        expected = lists(client)
        store.set_current(second)
        r = client.post("/v1/admin/reload", headers=AUTH)
        assert r.status_code == 409
        assert r.json() == {
            "detail": f"bundle refused, still serving {first}: {url}/{second}/neighbour_scores.npy: {DAMAGED}"
        }
        assert served(client) == first
        assert lists(client) == expected
        assert not (cache / second).exists()  # a damaged download never lands in the cache
        assert [p.name for p in cache.iterdir() if p.name.startswith(".tmp-")] == []
    # The watcher refuses it too, once: a new replica starting now has no model at all.
    with replica(url, tmp_path / "cache-new") as fresh:
        assert fresh.get("/readyz").status_code == 503


def test_a_damaged_cached_file_is_refused_and_fetched_again(url: str, tmp_path: Path) -> None:
    version = train_to(url, tmp_path, TINY)
    cache = tmp_path / "cache"
    with replica(url, cache, model_watch_interval=0) as client:
        assert served(client) == version
    target = cache / version / "neighbour_scores.npy"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    with replica(url, cache, model_watch_interval=0) as client:
        assert client.get("/readyz").status_code == 503  # refused from the cache, exactly as a local load
        assert not (cache / version).exists()
        r = client.post("/v1/admin/reload", headers=AUTH)  # downloaded afresh
        assert r.status_code == 200
        assert r.json()["model_version"] == version


def test_a_store_without_current_is_503_no_model_like_an_empty_models_dir(url: str, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with TestClient(create_app(Settings(models_dir=tmp_path / "empty", model_watch_interval=0))) as local:
        expected = local.get("/v1/articles/a/related")
    with replica(url, tmp_path / "cache") as client:
        for path in ("/readyz", "/v1/articles/a/related"):
            r = client.get(path)
            assert r.status_code == 503
            assert r.json() == {"detail": NO_MODEL}
        assert client.get("/v1/articles/a/related").json() == expected.json()
        r = client.post("/v1/admin/reload", headers=AUTH)
        assert r.status_code == 409
        assert r.json() == {
            "detail": f"bundle refused, still serving None: no current model in {url!r}: train a model first"
        }
        # The first training is picked up by the watcher.
        version = train_to(url, tmp_path, TINY)
        assert wait_for(client, version) == version


def test_current_naming_a_missing_or_bad_version_is_refused(url: str, tmp_path: Path) -> None:
    first = train_to(url, tmp_path, TINY)
    store = RemoteStore(url)
    with replica(url, tmp_path / "cache", model_watch_interval=0) as client:
        store.fs.pipe_file(f"{store.root}/{POINTER}", b"20990101T000000000Z-deadbeef\n")
        r = client.post("/v1/admin/reload", headers=AUTH)
        assert r.json()["detail"] == (
            f"bundle refused, still serving {first}: bundle '20990101T000000000Z-deadbeef' has no {MANIFEST} in {url!r}"
        )
        store.fs.pipe_file(f"{store.root}/{POINTER}", b"../../etc\n")
        r = client.post("/v1/admin/reload", headers=AUTH)
        assert r.json()["detail"] == f"bundle refused, still serving {first}: bad bundle version name '../../etc'"
        assert served(client) == first


def test_writes_stay_in_the_replicas_own_change_log(url: str, tmp_path: Path) -> None:
    train_to(url, tmp_path, TINY)
    article = {"title": "Comet over the observatory", "body": "The telescope followed the comet tail at dawn."}
    with replica(url, tmp_path / "cache", log_poll_interval=0.01) as client:
        r = client.put("/v1/articles/comet", json=article, headers=AUTH)
        assert r.status_code in (200, 201)
        assert client.get("/v1/articles/comet").status_code == 200
    assert (tmp_path / "cache" / "changes.sqlite").is_file()


def test_without_fsspec_a_url_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setitem(sys.modules, "fsspec", None)  # import fsspec now raises ImportError
    message = "'memory://x' is a URL: bundles in shared storage need fsspec, install it with pip install 'recommender[remote]'"
    with pytest.raises(BundleError) as refused:
        RemoteStore("memory://x")
    assert str(refused.value) == message
    corpus = write_jsonl(tmp_path / "tiny.jsonl", TINY)
    assert main(["train", "--corpus", str(corpus), "--models-dir", "memory://x", "--quiet"]) == 1
    assert capsys.readouterr().err == f"recommender: error: {message}\n"
    # Local folders never import it: training and serving one works with fsspec unimportable.
    models = tmp_path / "models"
    assert main(["train", "--corpus", str(corpus), "--models-dir", str(models), "--quiet", "--min-df", "1"]) == 0
    with TestClient(create_app(Settings(models_dir=models, model_watch_interval=0))) as client:
        assert client.get("/readyz").status_code == 200


def test_cli_trains_to_a_url_and_other_commands_refuse_one(url: str, tmp_path: Path, capsys) -> None:
    corpus = write_jsonl(tmp_path / "tiny.jsonl", TINY)
    assert main(["train", "--corpus", str(corpus), "--models-dir", url, "--quiet", "--min-df", "1"]) == 0
    version = RemoteStore(url).current()
    assert f"in {url}/{version}\n" in capsys.readouterr().out
    assert main(["info", "--models-dir", url]) == 1
    assert (
        capsys.readouterr().err
        == f"recommender: error: --models-dir {url!r}: only 'train' writes to a URL; use a folder\n"
    )


def test_compaction_by_the_service_needs_a_models_dir() -> None:
    with pytest.raises(ValueError, match="compact_interval must be 0 with models_url"):
        Settings(models_url="memory://x", compact_interval=60)
    assert Settings(models_url="", cache_dir="").models_url is None


def test_serve_without_fsspec_is_one_line_before_the_server_starts(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    for name in ("RECOMMENDER_MODELS_URL", "RECOMMENDER_MODELS_DIR", "RECOMMENDER_CACHE_DIR"):
        monkeypatch.setenv(name, "")  # restored after the test: serve passes its settings on in the environment
    monkeypatch.setitem(sys.modules, "fsspec", None)
    assert main(["serve", "--models-url", "memory://x", "--port", "1"]) == 1
    assert capsys.readouterr().err.endswith("need fsspec, install it with pip install 'recommender[remote]'\n")


def test_a_restarted_replica_loads_its_cached_copy_without_downloading(url: str, tmp_path: Path) -> None:
    version = train_to(url, tmp_path, TINY)
    cache = tmp_path / "cache"
    with replica(url, cache, model_watch_interval=0) as client:
        assert served(client) == version
    before = {p.name: p.stat().st_ino for p in (cache / version).iterdir()}
    with replica(url, cache, model_watch_interval=0) as client:
        assert served(client) == version
    assert {p.name: p.stat().st_ino for p in (cache / version).iterdir()} == before
