"""The benchmark scripts: the report builder on made-up results, the synthetic corpus, and a quick run.

The quick run (``python -m benchmarks.run --quick``, BBC News only, short
runs) is the CI smoke test of the scripts (issue 4, acceptance 5). It needs
``../shared/corpora``: skipped without it, failed when ``CI`` is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.bench_live import (
    compare_lists,
    mean_recall,
    on_every_worker,
    percentiles,
    precision_by_label,
    reverse_presence,
    split_rows,
)
from benchmarks.report import checks, write_report
from benchmarks.synthetic import SentencePool, drafts, sentences, synthetic_articles

from .conftest import ROOT, shared_corpus

RECORDS = [
    {
        "id": f"{label}-{n}",
        "category": label,
        "title": f"{label.title()} story number {n}",
        "body": " ".join(
            f"Sentence {s} of the {label} story {n} talks about {label} matters at some length here." for s in range(6)
        ),
    }
    for label in ("sport", "science", "politics")
    for n in range(5)
]


def _stats(p50: float) -> dict[str, float]:
    return {"count": 100, "p50_us": p50, "p95_us": p50 * 1.5, "p99_us": p50 * 2, "mean_us": p50 * 1.1}


def _job(seconds: float, peak: int, sampled: bool = False) -> dict:
    return {"seconds": seconds, "peak_bytes": peak, "sampled": sampled, "rows_timed": 10, "articles": 100}


def fake_live() -> dict:
    """A live suite's results (benchmarks.bench_live.run), every figure within its threshold."""
    fresh = {"count": 50, "p50": 0.05, "p99": 0.1, "max": 0.12, "samples": 50, "timed_out": 0}
    wrk = {"requests": 60_000, "rps": 10_000.0, "p50_us": 3000, "p99_us": 9000, "non_2xx_or_errors": 0}
    writer = {"writes": 60, "statuses": {"201": 60}, "errors": 0, "first_errors": [], "put_ms": {"p99": 30.0}}
    same = {"lists": 19_000, "ids_differ": 0, "first_differing": [], "max_score_diff": 0.0, "equal": True}
    return {
        "plan": {"batch": 1000},
        "skipped": {},
        "errors": {},
        "seconds": {"quality": 60.0},
        "quality": {
            "corpus": "20ng",
            "articles": 18_846,
            "held_out": 1_884,
            "train_seconds_90": 8.0,
            "train_seconds_100": 9.0,
            "put_ms": {"count": 1884, "p50": 4.0, "p99": 20.0, "max": 30.0},
            "fetch": {"requests": 18_846, "seconds": 9.0, "threads": 4},
            "recall_at_10": 0.93,
            "recall_at_10_new": 0.91,
            "recall_at_10_old": 0.93,
            "p_at_10_live": 0.701,
            "p_at_10_retrain": 0.70,
            "p_at_10_gap": 0.001,
            "reverse": {"own_pairs": 5000, "own_share": 0.97, "all_pairs": 9000, "all_share": 0.9},
            "freshness_upsert": {**fresh, "with_reverse_check": 45},
            "freshness_delete": {**fresh, "lists_checked": 60},
        },
        "speed": {
            "corpus": "arxiv",
            "articles": 126_492,
            "single_put_ms": {"count": 300, "p50": 8.0, "p99": 40.0, "max": 60.0},
            "get_related_ms": {"count": 300, "p50": 0.5, "p99": 2.0, "max": 3.0},
            "batches": [
                {
                    "articles": 1000,
                    "bytes": 1_200_000,
                    "seconds": 2.0,
                    "articles_per_second": 500.0,
                    "served_by_both_workers_seconds": 2.3,
                }
            ],
            "batch_articles_per_second": 500.0,
            "wrk": {
                "seconds_per_run": 6,
                "connections": 32,
                "quiet": [wrk],
                "with_writer": [{**wrk, "rps": 9000.0}],
                "writers": [writer],
                "ratio": 0.9,
            },
        },
        "kill_writes": {
            "streams": 2,
            "killed_after_seconds": 3.0,
            "sent": 502,
            "acknowledged": 500,
            "in_flight": 2,
            "after_restart": {
                "acknowledged": {"present": 500, "absent": 0, "wrong": 0},
                "in_flight": {"present": 1, "absent": 1, "wrong": 0},
            },
            "acknowledged_missing": 0,
            "half_there": 0,
        },
        "kill_compact": {
            "usual_compact_seconds": 12.0,
            "killed_after_seconds": 6.0,
            "was_running_at_kill": True,
            "current_before": "a",
            "current_after_kill": "a",
            "writes": 500,
            "after_restart": {"present": 500, "absent": 0, "wrong": 0},
            "second_compact_exit": 0,
            "second_compact": "compacted 502 change(s)",
            "after_second_compact": {"present": 500, "absent": 0, "wrong": 0},
            "missing": 0,
        },
        "replay": {
            "bundle_articles": 8_846,
            "logged_upserts": 10_000,
            "upsert_command_seconds": 3.0,
            "load_seconds_no_replay": [0.1, 0.1, 0.1],
            "load_seconds_replay": [4.1, 4.0, 4.2],
            "replay_seconds": 12.0,
            "replay_ms_per_change": 1.2,
            "checkpoint_at": 9_001,
            "checkpoint_bytes": 25_000_000,
            "load_seconds_checkpoint": [1.6, 1.5, 1.7],
            "restart_replay_seconds": 1.5,
        },
        "compaction_under_load": {
            "logged_before": 300,
            "seconds": 40.0,
            "wrk": {
                "connections": 32,
                "runs": 9,
                "requests": 90_000,
                "rps": 2500.0,
                "failed": 0,
                "p99_us_worst_run": 90_000,
                "max_us": 200_000,
            },
            "writer": writer,
            "compaction": {"started_after_seconds": 12.0, "seconds": 20.0, "exit": 0, "summary": "compacted"},
            "served_after": {"version": "b+400", "base_version": "b"},
            "second_compaction": "compacted 100 change(s)",
            "served_vs_train": same,
            "compacted_bundle_vs_train": same,
            "failed_total": 0,
        },
    }


def fake_results() -> dict:
    """Results shaped like benchmarks.run's, for a 20NG-like and an arXiv-like corpus."""
    training = []
    for name, n, ours in (("20ng", 18_846, 9.0), ("arxiv", 126_492, 200.0)):
        training.append(
            {
                "corpus": name,
                "articles": n,
                "ours": _job(ours, 3 * 1024**3),
                "ours_plain": _job(ours * 0.8, 2 * 1024**3),
                "sdt": {**_job(ours * 1.2, 1024**3, sampled=name == "arxiv"), "phases": {"topk": 5.0}},
                "naive": {**_job(ours * 3, 1024**3, sampled=name == "arxiv"), "phases": {"topk": 9.0}},
                "ratios": {
                    "ours_vs_sdt": 0.83,
                    "ours_vs_naive": 0.33,
                    "default_vs_plain": 1.25,
                    "plain_vs_sdt": 0.67,
                    "plain_vs_naive": 0.27,
                },
            }
        )
    queries = [
        {
            "corpus": name,
            "articles": n,
            "lookup": _stats(20.0),
            "lookup_describe": _stats(80.0),
            "baseline_lookup": _stats(5000.0),
            "vectorise": _stats(200.0),
            "search": _stats(300.0 * scale),
            "end_to_end": _stats(900.0 * scale),
            "baseline_text": _stats(40_000.0 * scale),
            "ratios": {"text_end_to_end_speedup": 44.4, "text_search_speedup": 133.3, "lookup_speedup": 250.0},
        }
        for name, n, scale in (("bbc", 2_225, 0.2), ("arxiv", 126_492, 4.0))
    ]
    runs = []
    for workers in (1, 2):
        for endpoint, rps in (("healthz", 8000.0), ("related", 7000.0), ("widget", 6000.0), ("post", 500.0)):
            for connections in (32, 1):
                runs.append(
                    {
                        "endpoint": endpoint,
                        "workers": workers,
                        "connections": connections,
                        "rps": rps / (4 if connections == 1 else 1),
                        "rps_vs_healthz": rps / 8000.0,
                        "p50_us": 400 if connections == 1 else 4000,
                        "p99_us": 900,
                        "server_cpu_us_per_request": 150.0,
                        "non_2xx_or_errors": 0,
                    }
                )
    memory = {"rss": 300 * 1024**2, "pss": 200 * 1024**2, "uss": 100 * 1024**2, "shared": 200 * 1024**2}
    startup = {
        "corpus": "arxiv",
        "articles": 126_492,
        "cold_start_seconds": [2.1, 1.9, 2.0],
        "cold_start_median": 2.0,
        "floor_cold_start_seconds": [1.0, 1.0, 1.0],
        "floor_cold_start_median": 1.0,
        "cold_start_vs_floor": 2.0,
        "one_worker": {"workers": [{"pid": 1, **memory}], "supervisor": None},
        "two_workers": {"workers": [{"pid": 2, **memory}, {"pid": 3, **memory}], "supervisor": memory},
        "memory": {
            "second_worker_added_pss_share": 0.5,
            "second_worker_uss_vs_first_rss": 0.33,
            "second_worker_pss_vs_single_pss": 1.0,
        },
    }
    return {
        "mode": "full",
        "date": "2026-03-01T00:00:00+00:00",
        "load_start": [0.1, 0.1, 0.1],
        "load_end": [0.2, 0.2, 0.2],
        "seconds": 60.0,
        "machine": {
            "host": "test-host",
            "cpu_model": "Test CPU",
            "logical_cpus": 2,
            "usable_cpus": 2,
            "memory_bytes": 8 * 1024**3,
            "kernel": "6.0",
            "python": "3.11.0",
            "libraries": {"numpy": "2.0"},
            "wrk": "wrk 4.1.0",
        },
        "suites": {
            "training": {"corpora": training, "skipped": {}, "k": 20},
            "queries": {"models": queries, "limit": 10},
            "http": {
                "wrk": "wrk 4.1.0",
                "seconds_per_run": 6,
                "draft_words": 410,
                "rotated_ids": 200,
                "runs": runs,
            },
            "startup": startup,
            "sources": {
                "posts": 150_000,
                "wxr_bytes": 10**9,
                "jsonl_bytes": 8 * 10**8,
                "command": "recommender train --corpus FILE --semantic-weight 0",
                "jsonl": _job(300.0, 5 * 1024**3),
                "wxr": _job(310.0, 5 * 1024**3),
                "ratios": {"peak_wxr_vs_jsonl": 1.0, "seconds_wxr_vs_jsonl": 1.03},
            },
            "quality": {
                "corpora": [{"corpus": "bbc", "markdown": "| method | P@10 |\n|---|---|\n| recommender | 0.95 |\n"}],
                "skipped": {"20ng": "20newsgroups.jsonl.gz not found"},
            },
            "live": fake_live(),
        },
        "skipped": {},
        "errors": {},
    }


def test_report_builder_writes_json_markdown_and_plots(tmp_path: Path) -> None:
    written = write_report(fake_results(), tmp_path, "2026-03-01-test-host")
    names = {p.name for p in written}
    assert {"2026-03-01-test-host.json", "2026-03-01-test-host.md"} <= names
    md = (tmp_path / "2026-03-01-test-host.md").read_text(encoding="utf-8")
    assert md.startswith("# Benchmark report")
    for heading in ("| CPU | Test CPU |", "## Acceptance figures", "## 1. Training", "## 2. Queries", "## 3. HTTP"):
        assert heading in md
    assert "## 4. Cold start and memory" in md and "## 5. Quality" in md and "## 6. Sources" in md
    assert "## 7. Live index" in md and "### Compaction under load" in md
    assert "extrapolated" in md  # the sampled arXiv baselines are said to be
    assert "**NO**" not in md  # every made-up figure meets its requirement
    data = json.loads((tmp_path / "2026-03-01-test-host.json").read_text(encoding="utf-8"))
    assert all(c["pass"] for c in data["checks"] if c["required"] != "(reported)")
    pytest.importorskip("matplotlib")
    for kind in ("training", "latency", "http"):
        png = tmp_path / f"2026-03-01-test-host-{kind}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png.name})" in md


def test_checks_flag_a_missed_figure_and_an_unmeasured_one() -> None:
    results = fake_results()
    results["suites"]["training"]["corpora"][0]["ratios"]["plain_vs_sdt"] = 1.4
    results["suites"]["training"]["corpora"][0]["ratios"]["ours_vs_sdt"] = 2.0
    del results["suites"]["startup"]
    by_name = {c["check"]: c for c in checks(results)}
    assert by_name["train 20 Newsgroups: same job (--semantic-weight 0) / sparse_dot_topn (2 threads)"]["pass"] is False
    # A figure reported beside the required ones passes or fails nothing.
    assert by_name["train 20 Newsgroups: default (with semantic view) / sparse_dot_topn"]["pass"] is None
    assert by_name["cold start to /readyz, arXiv 126k (s)"]["pass"] is None
    assert by_name["cold start to /readyz, arXiv 126k (s)"]["measured"] == "not measured"


def test_checks_of_the_live_index_flag_each_missed_figure() -> None:
    results = fake_results()
    live = results["suites"]["live"]
    live["quality"]["recall_at_10"] = 0.88
    live["quality"]["freshness_delete"]["timed_out"] = 1
    live["speed"]["wrk"]["ratio"] = 0.79
    live["kill_writes"]["acknowledged_missing"] = 1
    live["kill_compact"]["was_running_at_kill"] = False  # killed too late: nothing was measured
    failed = {c["check"] for c in checks(results) if c["pass"] is False}
    unmeasured = {c["check"] for c in checks(results) if c["measured"] == "not measured"}
    assert any("recall@10" in c for c in failed)
    assert any("a delete served by both workers" in c for c in failed)
    assert any("with a writer at 10 PUT/s" in c for c in failed)
    assert any("acknowledged writes missing" in c for c in failed)
    assert any("kill -9 of compact" in c for c in unmeasured)
    assert len(failed) == 4


def test_live_split_is_seeded_and_holds_out_the_first_tenth() -> None:
    held, kept = split_rows(100)
    assert len(held) == 10 and len(kept) == 90
    assert (held, kept) == split_rows(100)
    assert sorted(held + kept) == list(range(100)) and kept == sorted(kept)
    assert split_rows(100, seed=8)[0] != held


def test_live_metrics_on_small_lists() -> None:
    retrain = {"a": ["b", "x"], "b": ["a", "x"], "c": ["a"], "x": ["a", "b"], "d": []}
    live = {"a": ["b"], "b": ["x", "a"], "c": ["b"], "x": ["a", "c"], "d": ["a"]}
    # a 1/2, b 2/2, c 0/1, x 1/2; d has nothing to recall and is left out.
    assert mean_recall(live, retrain) == pytest.approx((0.5 + 1 + 0 + 0.5) / 4)
    labels = {"a": "p", "b": "p", "c": "q", "x": "q", "d": "p"}
    assert precision_by_label(live, labels, k=2) == pytest.approx(4 / 10)  # a, b, x and d score one each
    assert precision_by_label({}, labels) is None
    # x's own list names a and c; the retrain lists x for a (but live does not), not for c.
    # Every retrain pair (old j, new x): a and b list x; live has it in b only.
    assert reverse_presence(live, retrain, {"x"}) == {
        "own_pairs": 1,
        "own_share": 0.0,
        "all_pairs": 2,
        "all_share": 0.5,
    }


def test_a_change_is_served_once_every_worker_answered_it() -> None:
    # Worker 1 answers fresh from its 2nd answer on; worker 2 only at its 3rd; 9 answers from no known worker.
    answers = iter([(False, 1, 0), (True, 1, 0), (False, 2, 0), (False, 9, 0), (True, 1, 0), (True, 2, 0)])
    found = on_every_worker(lambda: next(answers), [1, 2], since=0.0, timeout=1e9)
    assert found["probes"] == [2, 3] and found["unidentified"] == 1 and found["regressions"] == 0
    assert found["seconds"] is not None and found["seconds"] > 0
    # A worker that answers stale after a fresh answer starts over (counted); one never answering times out.
    answers = iter([(True, 1, 0), (False, 1, 0), (True, 1, 0), (True, 2, 0)])
    assert on_every_worker(lambda: next(answers), [1, 2], since=0.0, timeout=1e9)["regressions"] == 1
    quiet = on_every_worker(lambda: (True, 1, 0), [1, 2], since=time.perf_counter(), timeout=0.05)
    assert quiet["seconds"] is None and quiet["probes"][1] > 0
    # Each key (the article, then the lists that held it) on each worker.
    answers = iter([(True, 1, 0), (True, 2, 0), (True, 1, 1), (True, 2, 1)])
    assert on_every_worker(lambda: next(answers), [1, 2], since=0.0, keys=2, timeout=1e9)["probes"] == [2, 2]


def test_percentiles_are_nearest_rank() -> None:
    p = percentiles([float(v) for v in range(1, 101)])
    assert (p["count"], p["p50"], p["p99"], p["max"]) == (100, 50.0, 99.0, 100.0)
    assert percentiles([3.0]) == {"count": 1, "p50": 3.0, "p99": 3.0, "max": 3.0}
    assert percentiles([])["p50"] is None


def test_compare_lists_needs_the_same_ids_in_order_and_close_scores() -> None:
    want = {"a": [("b", 0.5), ("c", 0.25)], "b": [("a", 0.5)]}
    assert compare_lists({"a": [("b", 0.5), ("c", 0.25)], "b": [("a", 0.5)]}, want)["equal"]
    swapped = compare_lists({"a": [("c", 0.25), ("b", 0.5)], "b": [("a", 0.5)]}, want)
    assert (swapped["ids_differ"], swapped["first_differing"], swapped["equal"]) == (1, ["a"], False)
    assert not compare_lists({"a": [("b", 0.5), ("c", 0.25)], "b": [("a", 0.50001)]}, want)["equal"]
    # Served scores carry 6 decimals: the expected ones are rounded alike.
    rounded = {"a": [("b", 0.5), ("c", 0.123457)], "b": [("a", 0.5)]}
    want["a"][1] = ("c", 0.1234567)
    assert compare_lists(rounded, want, decimals=6)["max_score_diff"] < 1e-9


def test_synthetic_corpus_is_deterministic_and_made_of_real_sentences() -> None:
    pool = SentencePool.from_records(RECORDS)
    first = list(synthetic_articles(pool, 20, seed=5))
    assert first == list(synthetic_articles(pool, 20, seed=5))
    assert first != list(synthetic_articles(pool, 20, seed=6))
    known = {s for r in RECORDS for s in sentences(r["body"])}
    for article in first:
        assert article["title"] in {r["title"] for r in RECORDS}
        parts = sentences(article["body"])
        assert parts and all(s in known for s in parts)
        # All of an article's sentences come from articles of one label.
        assert len({s.split(" of the ")[1].split()[0] for s in parts}) == 1


def test_drafts_have_about_400_words() -> None:
    texts = drafts(RECORDS, 5, words=400)
    assert len(texts) == 5
    assert all(400 <= len(body.split()) < 460 for _, body in texts)


@pytest.mark.corpora
@pytest.mark.slow
def test_quick_mode_runs_end_to_end(tmp_path: Path) -> None:
    shared_corpus("bbc-news.jsonl.gz")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMMENDER_")}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = next(tmp_path.glob("quick-*.md")).read_text(encoding="utf-8")
    data = json.loads(next(tmp_path.glob("quick-*.json")).read_text(encoding="utf-8"))
    assert data["errors"] == {}
    assert set(data["suites"]) == {"training", "queries", "http", "startup", "quality", "sources", "live", "cluster"}
    cluster = data["suites"]["cluster"]["corpora"][0]
    assert cluster["corpus"] == "bbc" and cluster["lists"]["same"] is True
    assert cluster["cluster"]["cluster"]["workers"] == 2 and len(cluster["projections"]) == 4
    live = data["suites"]["live"]
    assert live["errors"] == {} and live["kill_writes"]["acknowledged_missing"] == 0
    assert live["quality"]["recall_at_10"] > 0.8 and live["compaction_under_load"]["served_vs_train"]["equal"]
    sources = data["suites"]["sources"]
    assert sources["posts"] > 100 and sources["ratios"]["peak_wxr_vs_jsonl"] > 0
    bbc = data["suites"]["training"]["corpora"][0]
    assert bbc["corpus"] == "bbc" and bbc["articles"] > 2000
    assert bbc["naive"]["seconds"] > 0 and bbc["ours"]["peak_bytes"] > 0
    assert data["suites"]["queries"]["models"][0]["lookup"]["count"] > 0
    assert data["suites"]["quality"]["corpora"][0]["ours"]["P@10"] > 0.8
    http = data["suites"]["http"]
    assert http.get("skipped") or all(r["non_2xx_or_errors"] == 0 for r in http["runs"])
    for heading in (
        "## 1. Training",
        "## 2. Queries",
        "## 3. HTTP",
        "## 4. Cold start",
        "## 5. Quality",
        "## 6. Sources",
        "## 7. Live index",
        "## 8. Training on a Dask cluster",
    ):
        assert heading in md
