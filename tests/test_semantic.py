"""Relevance features: semantic blend, explanations, fallback, boilerplate, recency, orphans, evaluate."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from recommender.corpus import read_corpus
from recommender.evaluate import evaluate, write_report
from recommender.orphans import find_orphans
from recommender.recommend import Filters, Recommender
from recommender.train import TrainOptions, train

from .conftest import DEMO_CORPUS, write_jsonl

BOILERPLATE = [
    "This post was last updated on {d} {m} 2026.",
    "Show Comments ({n})",
    "Your email address will not be published.",
]
MONTHS = ["January", "March", "May", "July", "October"]


@pytest.fixture(scope="module")
def demo_records() -> list[dict]:
    return [json.loads(line) for line in DEMO_CORPUS.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def demo_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("demo") / "models"
    train([DEMO_CORPUS], models, TrainOptions(min_df=1, n_jobs=1))
    return models


def test_semantic_blend_is_stored_and_used(demo_models: Path) -> None:
    rec = Recommender.load(demo_models)
    assert rec.semantic.active and rec.manifest["parameters"]["semantic_weight"] == 0.7
    sem = rec.semantic
    # The augmented vector of an article is its LSA vector blended with its
    # best lexical neighbours' (rank-decayed weights), unit length.
    assert np.allclose(np.linalg.norm(sem.augmented, axis=1), 1.0, atol=1e-5)
    source = rec.index_for("tech-brightwell-sodium-battery-funding")
    for item in rec.related(rec.ids[source], limit=5).items:
        lexical = float(rec.matrix[source].multiply(rec.matrix[item.index]).sum())
        semantic = float(np.dot(sem.augmented[source], sem.augmented[item.index]))
        assert item.score == pytest.approx(0.3 * lexical + 0.7 * semantic, abs=1e-5)
    # Free text goes through the same blend, with the draft augmented by its own lexical neighbours.
    text = rec.related_to_text("Brightwell Cells", "sodium-ion battery factory in Wrenhollow", limit=3)
    assert text.items and all("brightwell" in i.id for i in text.items[:2])
    # Every corpus article's own text, given as a draft, finds the same list
    # with the same scores as its id (besides the article itself).
    for line in DEMO_CORPUS.read_text().splitlines():
        record = json.loads(line)
        as_text = rec.related_to_text(record["title"], record["body"], limit=6)
        as_id = rec.related(record["id"], limit=5)
        assert as_text.items[0].id == record["id"]
        others = [(i.id, i.score) for i in as_text.items if i.id != record["id"]][:5]
        assert [i for i, _ in others] == [i.id for i in as_id.items], record["id"]
        assert [s for _, s in others] == pytest.approx([i.score for i in as_id.items], abs=1e-5)


def test_explanations_terms_occur_in_both_and_sum_below_lexical(demo_models: Path, demo_records: list[dict]) -> None:
    rec = Recommender.load(demo_models)
    analyzer = rec.vectorizer.build_analyzer()
    text_of = {r["id"]: set(analyzer(r["title"])) | set(analyzer(r["body"])) for r in demo_records}
    checked = 0
    for article_id in rec.ids:
        source = rec.index_for(article_id)
        for item in rec.related(article_id, limit=5, explain=True).items:
            assert item.why, item
            terms = [w.term for w in item.why]
            assert all(t in text_of[article_id] and t in text_of[item.id] for t in terms)
            lexical = float(rec.matrix[source].multiply(rec.matrix[item.index]).sum())
            assert sum(w.contribution for w in item.why) <= lexical + 1e-6
            assert [w.contribution for w in item.why] == sorted((w.contribution for w in item.why), reverse=True)
            checked += 1
    assert checked > 200
    draft = rec.related_to_text("Comet", "the comet Halvorsen-Pike seen from Quillon Fell", limit=3, explain=True)
    assert all(item.why for item in draft.items)


def test_fallback_is_flagged_and_never_mixed_unmarked(demo_models: Path) -> None:
    rec = Recommender.load(demo_models)
    plain = rec.related("tech-brightwell-sodium-battery-funding", limit=10, filters=Filters.build(section="travel"))
    filled = rec.related(
        "tech-brightwell-sodium-battery-funding", limit=10, fallback=True, filters=Filters.build(section="travel")
    )
    real = [i for i in filled.items if not i.fallback]
    assert [i.id for i in real] == [i.id for i in plain.items]
    assert len(filled.items) == 10
    extra = [i for i in filled.items if i.fallback]
    assert extra and all(i.score == 0.0 for i in extra)
    # Fallback items come after every real match.
    assert filled.items[: len(real)] == real
    unrelated = rec.related_to_text("", "zzzz qqqq", limit=3, fallback=True)
    assert len(unrelated.items) == 3 and all(i.fallback for i in unrelated.items)


def test_injected_boilerplate_changes_no_ranking_and_no_excerpt(tmp_path: Path, demo_records: list[dict]) -> None:
    injected = []
    for n, record in enumerate(demo_records):
        record = dict(record)
        record.pop("excerpt")
        if n % 2 == 0:
            lines = [t.format(d=n % 28 + 1, m=MONTHS[n % 5], n=n * 3) for t in BOILERPLATE]
            record["body"] = lines[0] + "\n\n" + record["body"] + "\n\n" + lines[1] + "\n" + lines[2]
        injected.append(record)
    clean = [{k: v for k, v in r.items() if k != "excerpt"} for r in demo_records]
    options = TrainOptions(min_df=1, n_jobs=1)
    train([write_jsonl(tmp_path / "clean.jsonl", clean)], tmp_path / "clean", options)
    train([write_jsonl(tmp_path / "dirty.jsonl", injected)], tmp_path / "dirty", options)
    a, b = Recommender.load(tmp_path / "clean"), Recommender.load(tmp_path / "dirty")
    assert b.manifest["boilerplate"] == [
        "show comments (#)",
        "this post was last updated on # # #.",
        "your email address will not be published.",
    ]
    for article_id in a.ids:
        assert [i.id for i in a.related(article_id, limit=10).items] == [
            i.id for i in b.related(article_id, limit=10).items
        ]
        excerpt = b.article(article_id)["excerpt"]
        assert "updated on" not in excerpt and "Show Comments" not in excerpt and "email address" not in excerpt
        assert excerpt == a.article(article_id)["excerpt"]


def test_recency_decay_prefers_newer_articles(tmp_path: Path, demo_records: list[dict]) -> None:
    train([DEMO_CORPUS], tmp_path / "m", TrainOptions(min_df=1, n_jobs=1, recency_half_life_days=30))
    rec = Recommender.load(tmp_path / "m")
    now = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    dates = {r["id"]: r["published_at"] for r in demo_records}
    result = rec.related("sci-comet-halvorsen-pike-discovery", limit=5, now=now)
    assert len(result.items) == 5
    scores = [i.score for i in result.items]
    assert scores == sorted(scores, reverse=True)
    # With a 30-day half-life every score is below its undecayed blend.
    plain = Recommender.load(tmp_path / "m")
    plain.half_life_days = None
    base = {i.id: i.score for i in plain.related(result.source_id or "", limit=20).items}
    for item in result.items:
        age = (now - datetime.fromisoformat(dates[item.id]).replace(tzinfo=UTC).timestamp()) / 86400
        assert item.score == pytest.approx(base[item.id] * 0.5 ** (age / 30), rel=1e-6)


def test_orphans_lists_weak_boxes(demo_models: Path) -> None:
    rec = Recommender.load(demo_models)
    strict = find_orphans(rec, min_score=1.0, min_items=1)
    assert len(strict) == len(rec)
    assert find_orphans(rec, min_score=0.0, min_items=1) == []
    weak = find_orphans(rec, min_score=0.2, min_items=3)
    assert all(o.best_score < 0.2 or o.items < 3 for o in weak)


def test_evaluate_hides_labels_and_reports_baseline(tmp_path: Path, demo_records: list[dict]) -> None:
    report = evaluate([DEMO_CORPUS], label_field="section", k=5, options=TrainOptions(min_df=1, n_jobs=1))
    assert report.articles == 72 and report.baseline is not None
    assert 0 < report.baseline.precision <= 1 and 0 < report.ours.precision <= 1
    assert set(report.ours.per_label) == {r["section"] for r in demo_records}
    assert report.ours.coverage == 1.0
    files = write_report(report, tmp_path / "eval")
    assert [f.name for f in files][:2] == ["evaluation.json", "evaluation.md"]
    assert json.loads(files[0].read_text())["ours"]["k"] == 5
    assert "| recommender |" in files[1].read_text()
    with pytest.raises(Exception, match="no article has the label field 'nope'"):
        evaluate([DEMO_CORPUS], label_field="nope")


def test_demo_corpus_is_well_formed() -> None:
    articles = read_corpus(DEMO_CORPUS).articles
    assert len(articles) >= 60
    assert len({a.section for a in articles}) >= 6
    assert all(a.url and a.image and a.published_at and a.tags and a.excerpt for a in articles)


def test_boilerplate_is_found_on_a_sample_of_a_large_corpus() -> None:
    import random

    from recommender.boilerplate import Stripper, find_boilerplate

    rng = random.Random(3)
    words = ["harbour", "council", "festival", "railway", "orchard", "museum", "ferry", "market", "quarry", "bridge"]
    texts = []
    for i in range(9000):
        lines = [" ".join(rng.choice(words) for _ in range(12)).capitalize() + "."]
        if rng.random() < 0.05:  # about 5 % of articles: a template line
            lines.append(f"Updated on {i % 28 + 1} March {2000 + i % 20} by the night desk.")
        if rng.random() < 0.003:  # below the 1 % threshold
            lines.append("Corrections appear at the foot of this page.")
        texts.append("\n\n".join(lines))
    found = find_boilerplate(texts)
    assert found == ["updated on # # # by the night desk."]
    strip = Stripper(found)
    with_template = next(t for t in texts if "night desk" in t)
    assert "night desk" not in strip(with_template) and strip(with_template) == with_template.split("\n")[0]
    without = next(t for t in texts if "night desk" not in t)
    assert strip(without) == without


def test_batched_signatures_equal_one_signature_per_segment() -> None:
    from recommender.boilerplate import _signatures, segments, signature

    text = (
        "Posted on Monday 3 MAY 2026 by   the desk. Short.\n\n"
        "A long line that goes on and on about the harbour council and its railway plans. Then 12 more!\n"
        "Tab\tseparated\u00a0spaces and İstanbul in a line\rwith a carriage return inside it.\n"
        "x\n" + "y" * 400 + "\n"
    )
    expected = {signature(s) for s in segments(text) if 8 <= len(s) <= 300}
    assert expected and _signatures(text) == expected
    assert _signatures("") == set() and _signatures("tiny\nbits") == set()


@pytest.mark.slow
def test_randomized_svd_finds_the_top_singular_subspace() -> None:
    import scipy.sparse as sp

    from recommender.semantic import fit_semantic

    rng = np.random.default_rng(7)
    # A spectrum decaying like a corpus's: 80 topics of falling weight, plus noise, mostly zeros.
    left = rng.standard_normal((600, 80))
    right = rng.standard_normal((80, 900))
    dense = (left * (0.93 ** np.arange(80))) @ right + 0.05 * rng.standard_normal((600, 900))
    dense[rng.random(dense.shape) < 0.7] = 0.0
    x = sp.csr_matrix(np.abs(dense), dtype=np.float32)
    terms, vectors = fit_semantic(x, 40)
    assert terms.shape == (900, 40) and vectors.shape == (600, 40)
    np.testing.assert_allclose(terms.T @ terms, np.eye(40), atol=1e-5)
    true = np.linalg.svd(x.toarray().astype(np.float64), compute_uv=False)[:40]
    found = np.linalg.norm(x @ terms, axis=0)
    # Largest first, none above the true ones, the leading one exact, and at
    # least the share of the top-40 energy that scikit-learn's randomized
    # TruncatedSVD (same number of power iterations) keeps.
    assert np.all(np.diff(found) <= 1e-3) and np.all(found <= true * (1 + 1e-5))
    np.testing.assert_allclose(found[0], true[0], rtol=1e-5)
    from sklearn.decomposition import TruncatedSVD

    reference = TruncatedSVD(40, n_iter=5, random_state=0).fit(x).components_.T
    kept = np.sum(found**2) / np.sum(true**2)
    assert kept >= np.sum(np.linalg.norm(x @ reference, axis=0) ** 2) / np.sum(true**2) - 1e-3
    assert kept > 0.99
    projected = np.asarray(x @ terms)
    np.testing.assert_allclose(vectors, projected / np.linalg.norm(projected, axis=1, keepdims=True), atol=1e-6)
    again_terms, again_vectors = fit_semantic(x, 40)
    assert np.array_equal(terms, again_terms) and np.array_equal(vectors, again_vectors)


def test_row_blocks_multiply_like_the_whole_matrix() -> None:
    from concurrent.futures import ThreadPoolExecutor

    import scipy.sparse as sp

    from recommender.semantic import RowBlocks

    rng = np.random.default_rng(3)
    # Uneven rows: a few long ones first, empty rows in between, so the blocks differ in rows.
    dense = rng.random((50, 30)).astype(np.float32)
    dense[rng.random(dense.shape) < np.linspace(0.1, 0.95, 50)[:, None]] = 0.0
    dense[[7, 8, 30]] = 0.0
    x = sp.csr_matrix(dense)
    right = rng.standard_normal((30, 4)).astype(np.float32)
    with ThreadPoolExecutor(3) as threads:
        for parts in (1, 2, 3, 7, 60):
            blocks = RowBlocks(x, parts)
            assert 1 <= len(blocks.blocks) <= parts and sum(b.shape[0] for b in blocks.blocks) == 50
            np.testing.assert_allclose(blocks.times(right, threads), dense @ right, rtol=1e-6, atol=1e-6)
    empty = RowBlocks(sp.csr_matrix((5, 30), dtype=np.float32), 2)
    assert len(empty.blocks) == 1 and empty.blocks[0].shape == (5, 30)


def test_svd_is_the_same_on_one_thread_and_on_two() -> None:
    import scipy.sparse as sp

    from recommender.semantic import fit_semantic

    rng = np.random.default_rng(11)
    dense = rng.random((300, 200)).astype(np.float32)
    dense[dense < 0.9] = 0.0
    x = sp.csr_matrix(dense)
    one_terms, one_vectors = fit_semantic(x, 20, n_jobs=1)
    two_terms, two_vectors = fit_semantic(x, 20, n_jobs=2)
    np.testing.assert_allclose(two_terms, one_terms, atol=1e-6)
    np.testing.assert_allclose(two_vectors, one_vectors, atol=1e-6)


def test_tag_and_section_boosts_rerank_by_overlap(tmp_path: Path, demo_records: list[dict]) -> None:
    plain_dir, boosted_dir = tmp_path / "plain", tmp_path / "boosted"
    train([DEMO_CORPUS], plain_dir, TrainOptions(min_df=1, n_jobs=1))
    train([DEMO_CORPUS], boosted_dir, TrainOptions(min_df=1, n_jobs=1, tag_boost=0.2, section_boost=0.1))
    plain, boosted = Recommender.load(plain_dir), Recommender.load(boosted_dir)
    assert boosted.manifest["parameters"]["tag_boost"] == 0.2
    records = {r["id"]: r for r in demo_records}
    changed = 0
    for record in demo_records:
        source = plain.index_for(record["id"])
        base = {
            int(i): float(s)
            for i, s in zip(plain.neighbours[source], plain.neighbour_scores[source], strict=True)
            if i >= 0
        }
        items = boosted.related(record["id"], limit=8).items
        scores = [item.score for item in items]
        assert scores == sorted(scores, reverse=True)
        own_tags = {t.lower() for t in record["tags"]}
        for item in items:
            other = records[item.id]
            tags = {t.lower() for t in other["tags"]}
            jaccard = len(own_tags & tags) / len(own_tags | tags) if own_tags and tags else 0.0
            bonus = 0.2 * jaccard + 0.1 * (other["section"] == record["section"])
            assert item.score == pytest.approx(base[item.index] + bonus, abs=1e-9), (record["id"], item.id)
        changed += [i.id for i in items] != [i.id for i in plain.related(record["id"], limit=8).items]
    assert changed > 0  # the boosts do reorder some boxes of the demo corpus


def test_boost_options_are_checked() -> None:
    with pytest.raises(Exception, match="tag_boost must be a number in"):
        TrainOptions(tag_boost=1.5).validate()
    with pytest.raises(Exception, match="cannot be shown to the model"):
        evaluate([DEMO_CORPUS], label_field="section", keep_fields=("section",), baseline=False)
    with pytest.raises(Exception, match="keep_fields may only name"):
        evaluate([DEMO_CORPUS], keep_fields=("body",), baseline=False)
