"""A bundle keeps the articles it was fitted on (articles.jsonl), read and verified on demand only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recommender.bundle import MANIFEST, load_bundle, log_seq, read_records, resolve
from recommender.corpus import article_record, parse_record, read_corpus
from recommender.errors import BundleError, InvalidInputError
from recommender.fit import fit_parts
from recommender.recommend import Recommender
from recommender.schema import ARTICLES_FILE

from .conftest import TINY, write_jsonl

# A template line repeated in every body: stripped by training, kept in articles.jsonl.
FOOTER = "Subscribe to our newsletter for more stories like this one every single morning."


def test_the_records_are_the_articles_as_given_in_corpus_order(tiny_models: Path, tiny_corpus: Path) -> None:
    given = read_corpus([tiny_corpus]).articles
    records = list(read_records(resolve(tiny_models)))
    assert records == [article_record(a) for a in given]
    assert [parse_record(r) for r in records] == given
    manifest = load_bundle(tiny_models).manifest
    assert manifest["log_seq"] == 0 and log_seq(manifest) == 0
    assert manifest["files"][ARTICLES_FILE]["bytes"] == (resolve(tiny_models) / ARTICLES_FILE).stat().st_size
    assert "articles_file" in manifest["timings"]


def test_records_are_kept_before_boilerplate_stripping(tmp_path: Path, tiny_options) -> None:  # type: ignore[no-untyped-def]
    raw = [{**r, "body": f"{r['body']}\n\n{FOOTER}"} for r in TINY]
    articles = [parse_record(r) for r in raw]
    rec = Recommender.fit(articles, tiny_options)
    assert rec.manifest["boilerplate"], "the footer should be found as boilerplate"
    folder = rec.save(tmp_path / "models")
    assert [parse_record(r) for r in read_records(folder)] == articles
    assert all(FOOTER in r["body"] for r in read_records(folder))


def test_load_never_reads_the_records(tiny_models: Path) -> None:
    folder = resolve(tiny_models)
    (folder / ARTICLES_FILE).write_text("damaged\n", encoding="utf-8")
    assert len(Recommender.load(tiny_models)) == len(TINY)
    with pytest.raises(BundleError) as info:
        read_records(folder)
    assert str(info.value) == f"{folder / ARTICLES_FILE}: checksum mismatch: the bundle is damaged or was modified"
    (folder / ARTICLES_FILE).unlink()
    assert len(Recommender.load(tiny_models)) == len(TINY)
    with pytest.raises(BundleError) as info:
        read_records(folder)
    assert str(info.value) == f"{folder / ARTICLES_FILE}: file listed in the manifest is missing"


def test_an_older_bundle_without_records_loads_and_says_so(tiny_models: Path) -> None:
    folder = resolve(tiny_models)
    manifest = json.loads((folder / MANIFEST).read_text())
    del manifest["files"][ARTICLES_FILE], manifest["log_seq"]
    (folder / MANIFEST).write_text(json.dumps(manifest))
    (folder / ARTICLES_FILE).unlink()
    rec = Recommender.load(tiny_models)
    assert len(rec) == len(TINY) and log_seq(rec.manifest) == 0
    with pytest.raises(BundleError) as info:
        read_records(folder)
    assert str(info.value) == f"bundle {folder.name} has no {ARTICLES_FILE}: retrain it with 'recommender train'"


@pytest.mark.parametrize("value", [-1, True, "3", 1.5])
def test_a_bad_log_seq_is_refused(value: object) -> None:
    with pytest.raises(BundleError, match="manifest log_seq must be an integer >= 0"):
        log_seq({"log_seq": value})
    with pytest.raises(InvalidInputError, match="log_seq must be an integer >= 0"):
        fit_parts([parse_record(TINY[0])], _options(), log_seq=value)  # type: ignore[arg-type]


def _options():  # type: ignore[no-untyped-def]
    from recommender.options import TrainOptions

    return TrainOptions(min_df=1, max_df=1.0)


def test_fit_records_the_log_seq_it_is_given(tmp_path: Path, tiny_options) -> None:  # type: ignore[no-untyped-def]
    parts = fit_parts([parse_record(r) for r in TINY], tiny_options, log_seq=42)
    assert parts.manifest["log_seq"] == 42


def test_a_record_line_that_is_not_an_object_is_a_bundle_error(tmp_path: Path, tiny_options) -> None:  # type: ignore[no-untyped-def]
    from recommender.bundle import _records

    path = write_jsonl(tmp_path / "x.jsonl", [{"id": "a"}])
    with path.open("a", encoding="utf-8") as handle:
        handle.write("[1]\n{nope\n")
    found = _records(path)
    assert next(found) == {"id": "a"}
    with pytest.raises(BundleError, match=r"x\.jsonl:2: a record must be a JSON object"):
        next(found)


def test_any_text_a_json_corpus_can_hold_is_kept(tmp_path: Path, tiny_options) -> None:  # type: ignore[no-untyped-def]
    raw = [*TINY, {"id": "odd", "title": "中文 and ü\u2028", "body": "a &amp;lt;p&amp;gt; b\r\nc"}]
    articles = [parse_record(r) for r in raw]
    folder = Recommender.fit(articles, tiny_options).save(tmp_path / "models")
    assert (folder / ARTICLES_FILE).read_bytes().isascii()
    assert [parse_record(r) for r in read_records(folder)] == articles
