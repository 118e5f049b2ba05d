"""Shared fixtures: a tiny literal corpus, trained bundles, the shared corpora."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .postgres import postgres_server  # noqa: F401 - a fixture: a throwaway PostgreSQL cluster per module

ROOT = Path(__file__).resolve().parent.parent
SHARED_CORPORA = Path(os.environ.get("RECOMMENDER_SHARED_CORPORA", ROOT.parent / "shared" / "corpora"))
DEMO_CORPUS = ROOT / "recommender" / "data" / "demo_articles.jsonl"

# Three topics, four articles each, plus one article that shares no topic words.
TINY = [
    {
        "id": "f1",
        "title": "United win the cup final",
        "body": "The football club United won the cup final with a late goal from their striker.",
        "section": "sport",
        "tags": ["football"],
        "published_at": "2026-01-05",
    },
    {
        "id": "f2",
        "title": "Striker scores twice as United top the league",
        "body": "United's striker scored twice and the football club now tops the league table.",
        "section": "sport",
        "tags": ["football"],
        "published_at": "2026-02-05",
    },
    {
        "id": "f3",
        "title": "Cup final tickets sell out",
        "body": "Football fans bought every ticket for the cup final between United and City.",
        "section": "sport",
        "tags": ["football", "tickets"],
        "published_at": "2026-03-05",
    },
    {
        "id": "f4",
        "title": "City sign a new goalkeeper",
        "body": "The football club City signed a goalkeeper before the league season and the cup.",
        "section": "sport",
        "tags": ["football"],
        "published_at": "2026-04-05",
    },
    {
        "id": "b1",
        "title": "Battery maker raises funding",
        "body": "A battery start-up raised funding to build lithium cells for electric cars.",
        "section": "business",
        "tags": ["batteries"],
        "published_at": "2026-01-10",
    },
    {
        "id": "b2",
        "title": "Electric car sales climb",
        "body": "Sales of electric cars climbed as battery prices fell and charging spread.",
        "section": "business",
        "tags": ["cars"],
        "published_at": "2026-02-10",
    },
    {
        "id": "b3",
        "title": "Lithium prices fall",
        "body": "Lithium prices fell, cutting the cost of battery cells for electric cars.",
        "section": "business",
        "tags": ["batteries", "commodities"],
        "published_at": "2026-03-10",
    },
    {
        "id": "b4",
        "title": "Charging network expands",
        "body": "The charging network for electric cars expanded with new fast chargers and battery storage.",
        "section": "business",
        "tags": ["cars"],
        "published_at": "2026-04-10",
    },
    {
        "id": "s1",
        "title": "Comet seen from the observatory",
        "body": "Astronomers at the observatory saw the comet through the telescope at dawn.",
        "section": "science",
        "tags": ["space"],
        "published_at": "2026-01-15",
    },
    {
        "id": "s2",
        "title": "Telescope upgrade finished",
        "body": "The observatory finished the upgrade of its telescope mirror for comet surveys.",
        "section": "science",
        "tags": ["space"],
        "published_at": "2026-02-15",
    },
    {
        "id": "s3",
        "title": "Comet tail measured",
        "body": "Astronomers measured the comet tail with the new telescope camera at the observatory.",
        "section": "science",
        "tags": ["space", "comets"],
        "published_at": "2026-03-15",
    },
    {
        "id": "s4",
        "title": "Night sky guide for March",
        "body": "A guide to the night sky: planets, a comet and meteor showers seen without a telescope.",
        "section": "science",
        "tags": ["space"],
        "published_at": "2026-04-15",
    },
    {
        "id": "x1",
        "title": "Recipe of the week",
        "body": "Bake bread with flour, water, salt and yeast; knead, rest and bake.",
        "section": "food",
        "tags": ["recipes"],
        "published_at": "2026-05-01",
    },
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def tiny_records() -> list[dict]:
    return [dict(r) for r in TINY]


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "tiny.jsonl", TINY)


@pytest.fixture
def tiny_options():
    from recommender.train import TrainOptions

    # min_df 1: the tiny corpus has too few articles for document-frequency pruning.
    return TrainOptions(k=5, min_df=1, max_df=1.0, min_similarity=0.01, n_jobs=1)


@pytest.fixture
def tiny_models(tmp_path: Path, tiny_corpus: Path, tiny_options) -> Path:
    from recommender.train import train

    models = tmp_path / "models"
    train([tiny_corpus], models, tiny_options)
    return models


def shared_corpus(name: str) -> Path:
    """A corpus from ../shared/corpora; skipped when absent, failed when CI is set."""
    path = SHARED_CORPORA / name
    if not path.is_file():
        reason = f"{path} is not available (the shared corpora live beside the repository)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}")
        pytest.skip(reason)
    return path
