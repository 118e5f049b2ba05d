"""Suite 2: queries in process, against scikit-learn's brute-force search on the same vector.

On each trained model (BBC, 20 Newsgroups, arXiv, and the synthetic corpus
when trained), over a fixed random set of queries:

* lookup by id: ``Recommender.related(id, 10)`` reads the precomputed list
  (and ``describe`` turns it into dicts, as the CLI does); the baseline is
  what it replaces, ``NearestNeighbors(metric="cosine",
  algorithm="brute").kneighbors`` on the article's own row;
* free text: drafts of ~400 words composed of real sentences (three articles
  of one label), timed as vectorising (``vectorizer.transform_one``),
  searching (``SearchIndex.query`` over the inverted index, 50 candidates),
  and end to end (``Recommender.related_to_text``: vectorise, search, LSA
  re-scoring, near-duplicate collapsing); the baseline is ``kneighbors`` on
  the same vector.

Percentiles are over single calls timed with ``perf_counter_ns`` after a
warm-up. The sklearn baseline costs up to ~0.3 s a call at 126k articles, so
it runs on fewer queries (the count is in the results).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .synthetic import corpus_path, drafts, read_records

COUNTS = {"full": (1_000, 1_000, 100), "quick": (300, 100, 30)}
LIMIT = 10
WARMUP = 20


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def percentiles(samples_ns: Sequence[int] | np.ndarray) -> dict[str, float]:
    """p50/p95/p99/mean/count of call times, in microseconds."""
    us = np.asarray(samples_ns, dtype=np.float64) / 1e3
    if us.size == 0:
        return {"count": 0}
    p50, p95, p99 = np.percentile(us, [50, 95, 99])
    return {
        "count": int(us.size),
        "p50_us": round(float(p50), 2),
        "p95_us": round(float(p95), 2),
        "p99_us": round(float(p99), 2),
        "mean_us": round(float(us.mean()), 2),
    }


def time_calls(fn: Callable[[Any], Any], args: Sequence[Any], progress: str | None = None) -> list[int]:
    """Time ``fn(arg)`` once per arg (after a warm-up on the first few)."""
    for a in args[:WARMUP]:
        fn(a)
    out = []
    clock = time.perf_counter_ns
    last = time.monotonic()
    for i, a in enumerate(args):
        t = clock()
        fn(a)
        out.append(clock() - t)
        if progress and time.monotonic() - last > 10:
            log(f"{progress}: {i + 1}/{len(args)}")
            last = time.monotonic()
    return out


def bench_model(name: str, models_dir: Path, records: list[dict], mode: str) -> dict[str, Any]:
    """Every measurement of this suite on one trained model."""
    import scipy.sparse as sp
    from sklearn.neighbors import NearestNeighbors

    from recommender.recommend import Recommender

    n_lookup, n_text, n_base = COUNTS[mode]
    t = time.perf_counter()
    rec = Recommender.load(models_dir)
    load_seconds = time.perf_counter() - t
    n = len(rec)
    rng = np.random.default_rng(1)
    ids = [rec.ids[i] for i in rng.integers(0, n, size=n_lookup)]

    log(f"queries {name} ({n:,} articles): lookups")
    lookup = time_calls(lambda i: rec.related(i, LIMIT), ids)
    lookup_dicts = time_calls(lambda i: rec.describe(rec.related(i, LIMIT).items), ids)

    log(f"queries {name}: free text ({n_text} drafts of ~400 words)")
    texts = drafts(records, n_text)
    words = float(np.mean([len(body.split()) + len(title.split()) for title, body in texts]))
    vectors = [rec.vectorizer.transform_one(title, body) for title, body in texts]
    vectorise = time_calls(lambda tb: rec.vectorizer.transform_one(*tb), texts)
    search = time_calls(
        lambda cw: rec.search.query(cw[0], cw[1], 50, min_similarity=rec.min_similarity), vectors, f"{name} search"
    )
    end_to_end = time_calls(lambda tb: rec.related_to_text(tb[0], tb[1], LIMIT), texts, f"{name} end to end")

    log(f"queries {name}: sklearn NearestNeighbors(cosine, brute).kneighbors baseline ({n_base} queries)")
    nn = NearestNeighbors(n_neighbors=LIMIT + 1, metric="cosine", algorithm="brute").fit(rec.matrix)
    n_terms = rec.matrix.shape[1]
    query_rows = [
        sp.csr_matrix((w.astype(np.float32), c, [0, c.size]), shape=(1, n_terms)) for c, w in vectors[:n_base]
    ]
    base_text = time_calls(lambda q: nn.kneighbors(q), query_rows, f"{name} sklearn text")
    base_lookup = time_calls(lambda i: nn.kneighbors(rec.matrix[rec.index_of[i]]), ids[:n_base], f"{name} sklearn id")

    result = {
        "corpus": name,
        "articles": n,
        "load_seconds": round(load_seconds, 3),
        "draft_words_mean": round(words, 1),
        "lookup": percentiles(lookup),
        "lookup_describe": percentiles(lookup_dicts),
        "baseline_lookup": percentiles(base_lookup),
        "vectorise": percentiles(vectorise),
        "search": percentiles(search),
        "end_to_end": percentiles(end_to_end),
        "baseline_text": percentiles(base_text),
    }
    result["ratios"] = {
        # How many times faster than kneighbors on the same vector (medians).
        "text_end_to_end_speedup": _ratio(result["baseline_text"], result["end_to_end"]),
        "text_search_speedup": _ratio(result["baseline_text"], result["search"]),
        "lookup_speedup": _ratio(result["baseline_lookup"], result["lookup"]),
    }
    log(
        f"queries {name}: lookup p50 {result['lookup']['p50_us']:.1f} us, "
        f"text p50 {result['end_to_end']['p50_us'] / 1e3:.2f} ms, sklearn p50 "
        f"{result['baseline_text']['p50_us'] / 1e3:.2f} ms"
    )
    return result


def _ratio(baseline: dict[str, float], ours: dict[str, float]) -> float | None:
    if not baseline.get("p50_us") or not ours.get("p50_us"):
        return None
    return round(baseline["p50_us"] / ours["p50_us"], 2)


def run(mode: str, models: dict[str, Path], records_for: Callable[[str], list[dict]] | None = None) -> dict[str, Any]:
    """Measure every model of ``models`` (corpus name -> models dir)."""
    records_for = records_for or _records
    out = []
    for name, models_dir in models.items():
        out.append(bench_model(name, models_dir, records_for(name), mode))
    return {"models": out, "limit": LIMIT}


def _records(name: str) -> list[dict]:
    path = corpus_path(name)
    if path is None:
        raise FileNotFoundError(name)
    return read_records(path)
