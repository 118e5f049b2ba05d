"""The bundle schema: an edited manifest or an unlisted file is refused with a clear BundleError."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recommender.bundle import BUNDLE_FILES, LAZY_FILES, MANIFEST, load_bundle, resolve
from recommender.errors import BundleError
from recommender.recommend import Recommender
from recommender.schema import ARRAYS


def edit_manifest(models: Path, change: Any) -> Path:
    folder = resolve(models)
    manifest = json.loads((folder / MANIFEST).read_text())
    change(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


def test_every_file_the_loader_reads_is_in_the_schema(tiny_models: Path) -> None:
    folder = resolve(tiny_models)
    on_disk = {p.name for p in folder.iterdir()} - {MANIFEST}
    assert on_disk == {*BUNDLE_FILES, *LAZY_FILES}
    assert set(json.loads((folder / MANIFEST).read_text())["files"]) == {*BUNDLE_FILES, *LAZY_FILES}


@pytest.mark.parametrize("name", ["terms.txt", "idf.npy", "neighbours.npy", "stop_words.json"])
def test_a_file_left_out_of_the_checksums_is_refused(tiny_models: Path, name: str) -> None:
    folder = edit_manifest(tiny_models, lambda m: m["files"].pop(name))
    with pytest.raises(BundleError) as info:
        Recommender.load(tiny_models)
    assert str(info.value) == f"{folder / MANIFEST}: files not listed with checksums: {name}"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("vocabulary", 3, "manifest says vocabulary = 3, the files hold {terms}"),
        ("vocabulary", "many", "manifest says vocabulary = 'many', the files hold {terms}"),
        ("articles", 2, "manifest says articles = 2, the files hold 13"),
        ("parameters", [], "parameters must be a JSON object, got list"),
    ],
)
def test_an_edited_manifest_count_is_refused(tiny_models: Path, field: str, value: Any, message: str) -> None:
    terms = load_bundle(tiny_models).manifest["vocabulary"]
    folder = edit_manifest(tiny_models, lambda m: m.__setitem__(field, value))
    with pytest.raises(BundleError) as info:
        Recommender.load(tiny_models)
    assert str(info.value) == f"{folder}: {message.format(terms=terms)}"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("min_similarity", "high", "min_similarity must be a number in [0, 1), got 'high'"),
        ("min_similarity", 7, "min_similarity must be a number in [0, 1), got 7"),
        ("semantic_weight", None, "semantic_weight must be a number in [0, 1], got None"),
        ("neighbourhood", -1, "neighbourhood must be an integer in [0, 1000], got -1"),
        ("k", 0, "k must be an integer in [1, 200], got 0"),
    ],
)
def test_an_edited_parameter_is_refused(tiny_models: Path, name: str, value: Any, message: str) -> None:
    folder = edit_manifest(tiny_models, lambda m: m["parameters"].__setitem__(name, value))
    with pytest.raises(BundleError) as info:
        Recommender.load(tiny_models)
    assert str(info.value) == f"{folder}: {message}"


def test_edited_vectoriser_parameters_are_refused(tiny_models: Path) -> None:
    folder = edit_manifest(tiny_models, lambda m: m["parameters"].__setitem__("token_pattern", "(unclosed"))
    with pytest.raises(BundleError, match=r"vectoriser parameters are invalid: missing \), unterminated subpattern"):
        Recommender.load(tiny_models)
    assert folder.is_dir()


def test_the_old_arrays_field_is_not_trusted(tiny_models: Path) -> None:
    # Arrays are read by the schema's names; an edited list in the manifest changes nothing.
    edit_manifest(tiny_models, lambda m: m.__setitem__("arrays", ["neighbours", "../../etc/passwd"]))
    assert len(Recommender.load(tiny_models)) == 13


def test_an_array_of_the_wrong_dtype_or_shape_is_refused(tiny_models: Path) -> None:
    folder = resolve(tiny_models)
    manifest = json.loads((folder / MANIFEST).read_text())

    def replace(name: str, value: np.ndarray) -> None:
        import hashlib

        path = folder / f"{name}.npy"
        np.save(path, value)
        data = path.read_bytes()
        manifest["files"][path.name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        (folder / MANIFEST).write_text(json.dumps(manifest))

    neighbours = np.load(folder / "neighbours.npy")
    replace("neighbours", neighbours.astype(np.int64))
    with pytest.raises(BundleError, match="array neighbours must be int32, got int64"):
        Recommender.load(tiny_models)
    bad = neighbours.copy()
    bad[0, 0] = 10_000
    replace("neighbours", bad)
    with pytest.raises(BundleError, match=r"array neighbours holds values outside \[-1, 13\)"):
        Recommender.load(tiny_models)
    replace("neighbours", neighbours[:5])
    with pytest.raises(BundleError, match="array neighbours has 5 along 'articles', expected 13"):
        Recommender.load(tiny_models)
    replace("neighbours", neighbours)
    assert set(ARRAYS) <= {p.stem for p in folder.glob("*.npy")}
    Recommender.load(tiny_models)


def test_cli_reports_an_edited_manifest_in_one_line(tiny_models: Path) -> None:
    folder = edit_manifest(tiny_models, lambda m: m["parameters"].__setitem__("min_similarity", "high"))
    for command in (["info"], ["related", "f1"], ["export", "--out", "-"]):
        proc = subprocess.run(
            [sys.executable, "-m", "recommender", *command, "--models-dir", str(tiny_models)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if command == ["info"]:
            # info only reads and verifies the manifest's files; it shows the parameters as they are.
            assert proc.returncode == 0, proc.stderr
            continue
        assert proc.returncode == 1
        assert proc.stderr == (
            f"recommender: error: {folder}: min_similarity must be a number in [0, 1), got 'high'\n"
        ), proc.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.__setitem__("vocabulary", 3), "manifest says vocabulary = 3"),
        (lambda m: m.__setitem__("arrays", 7), None),
        (lambda m: m["parameters"].__setitem__("min_similarity", "high"), "min_similarity must be a number"),
        (lambda m: m["files"].pop("terms.txt"), "files not listed with checksums: terms.txt"),
    ],
)
def test_reload_of_an_edited_manifest_is_409_and_keeps_serving(
    tmp_path: Path, tiny_corpus: Path, tiny_options, change: Any, message: str | None
) -> None:
    from fastapi.testclient import TestClient

    from recommender.api.app import create_app
    from recommender.api.settings import Settings
    from recommender.train import train

    models = tmp_path / "models"
    first = train([tiny_corpus], models, tiny_options).version
    with TestClient(create_app(Settings(models_dir=models, admin_token="t"))) as client:
        second = train([tiny_corpus], models, tiny_options).version
        edit_manifest(models, change)
        r = client.post("/v1/admin/reload", headers={"Authorization": "Bearer t"})
        if message is None:  # a field the loader does not read: the new bundle loads
            assert r.status_code == 200 and r.json()["model_version"] == second
            return
        assert r.status_code == 409, r.text
        assert r.json()["detail"].startswith(f"bundle refused, still serving {first}: ")
        assert message in r.json()["detail"]
        assert client.get("/v1/articles/f1/related").json()["model_version"] == first
