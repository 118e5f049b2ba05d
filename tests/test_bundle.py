from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from recommender.bundle import (
    FORMAT_VERSION,
    MANIFEST,
    current_version,
    list_versions,
    load_bundle,
    resolve,
    write_bundle,
)
from recommender.corpus import read_corpus
from recommender.errors import BundleError
from recommender.recommend import Recommender
from recommender.train import train


def test_round_trip_keeps_arrays_and_metadata(tiny_models: Path) -> None:
    bundle = load_bundle(tiny_models)
    manifest = bundle.manifest
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["articles"] == 13 and manifest["version"] == current_version(tiny_models)
    assert set(manifest["libraries"]) >= {"numpy", "scipy", "python", "recommender"}
    assert all(len(f["sha256"]) == 64 for f in manifest["files"].values())
    assert isinstance(bundle.arrays["neighbours"], np.memmap)
    rec = Recommender(bundle)
    assert rec.article("f1")["title"] == "United win the cup final"
    assert rec.article("f1")["tags"] == ["football"]


def test_loaded_model_answers_like_the_fitted_one(tmp_path: Path, tiny_corpus: Path, tiny_options) -> None:
    fitted = Recommender.fit(read_corpus(tiny_corpus), tiny_options)
    folder = fitted.save(tmp_path / "m")
    rec = Recommender.load(tmp_path / "m")
    assert folder.name == rec.version == fitted.version
    # Save and load are pure serialisation: every array, text file and answer comes back the same.
    for name, value in fitted.parts.arrays.items():
        np.testing.assert_array_equal(np.asarray(rec.parts.arrays[name]), value, err_msg=name)
    assert rec.ids == fitted.ids and rec.parts.terms == fitted.parts.terms
    assert rec.parts.stop_words == fitted.parts.stop_words and rec.parts.tags == fitted.parts.tags
    assert bytes(rec.parts.metadata) == fitted.parts.metadata
    for article_id in fitted.ids:
        assert rec.related(article_id, 5) == fitted.related(article_id, 5)
    assert rec.related_to_text("Comet", "telescope comet", 5) == fitted.related_to_text("Comet", "telescope comet", 5)
    cols, _ = rec.vectorizer.transform_one("Comet", "telescope comet")
    assert cols.size == 2


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "name", ["neighbours.npy", "idf.npy", "terms.txt", "stop_words.json", "metadata.jsonl", "ids.txt", "tags.json"]
)
def test_one_changed_byte_is_refused_naming_the_file(tiny_models: Path, name: str) -> None:
    folder = resolve(tiny_models)
    _flip_one_byte(folder / name)
    with pytest.raises(BundleError) as info:
        load_bundle(tiny_models)
    assert str(info.value) == f"{folder / name}: checksum mismatch: the bundle is damaged or was modified"


def test_missing_file_and_unknown_format_version(tiny_models: Path) -> None:
    folder = resolve(tiny_models)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["format_version"] = 99
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError) as info:
        load_bundle(tiny_models)
    assert str(info.value) == (
        f"{folder / MANIFEST}: unknown bundle format version 99 (this recommender reads version {FORMAT_VERSION})"
    )
    manifest["format_version"] = FORMAT_VERSION
    (folder / MANIFEST).write_text(json.dumps(manifest))
    (folder / "ids.txt").unlink()
    with pytest.raises(BundleError, match="ids.txt: file listed in the manifest is missing"):
        load_bundle(tiny_models)


def test_only_bundles_inside_the_models_dir_load(tmp_path: Path, tiny_models: Path) -> None:
    with pytest.raises(BundleError, match="bad bundle version name '../elsewhere'"):
        load_bundle(tiny_models, "../elsewhere")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copytree(resolve(tiny_models), outside / "v1")
    link = tiny_models / "evil"
    os.symlink(outside / "v1", link)
    with pytest.raises(BundleError, match="outside the models directory"):
        load_bundle(tiny_models, "evil")
    with pytest.raises(BundleError, match="does not exist: train a model first"):
        load_bundle(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="no current model in .*: train a model first"):
        load_bundle(tmp_path / "empty")


def test_failed_training_leaves_current_untouched(
    tiny_models: Path, tiny_corpus: Path, tiny_options, tmp_path: Path
) -> None:
    before = current_version(tiny_models)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "title": "A"}\n{broken\n', encoding="utf-8")
    with pytest.raises(Exception, match="malformed JSON"):
        train([bad], tiny_models, tiny_options)
    # A crash while writing (after every file, before the rename) leaves nothing visible.
    parts = Recommender.fit(read_corpus(tiny_corpus), tiny_options).parts

    def crash(folder: Path) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(BundleError, match="cannot write bundle .*: No space left on device"):
        write_bundle(tiny_models, parts, before_rename=crash)
    assert current_version(tiny_models) == before
    assert list_versions(tiny_models) == [before]
    assert not [p for p in tiny_models.iterdir() if p.name.startswith(".tmp")]
    Recommender.load(tiny_models)


def test_retraining_switches_current_and_prunes_old_versions(
    tiny_models: Path, tiny_corpus: Path, tiny_options
) -> None:
    first = current_version(tiny_models)
    versions = [first]
    for _ in range(3):
        versions.append(train([tiny_corpus], tiny_models, tiny_options, keep=2).version)
    assert current_version(tiny_models) == versions[-1]
    assert list_versions(tiny_models) == sorted(versions[-2:])
