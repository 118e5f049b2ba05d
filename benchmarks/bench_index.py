"""Exact neighbours, ours against baselines timed in the same run (read the ratios).

Two measurements on one corpus, after fitting ``TfidfModel(n_jobs=1)``:

* all-pairs top k: ``recommender.allpairs.all_pairs_topk`` over every row, against
  ``sparse_dot_topn.sp_matmul_topn(X, X.T, top_n=k+1, n_threads=2)`` and the
  naive ``NearestNeighbors(metric="cosine", algorithm="brute").kneighbors``.
  Ours always runs on every row; a baseline given ``sample_rows`` runs on a
  fixed random sample of rows and its time is extrapolated linearly to every
  row (its work per row does not depend on which rows are computed; one-off
  set-up such as the transpose is timed apart and not scaled). Wall and CPU
  time (all threads) are reported, and the peak memory added during our call
  (RSS sampled every 20 ms). The neighbour sets are checked against
  sparse_dot_topn on the sampled rows.
* free-text queries: ~400-word texts built from the bodies of held-out
  articles (left out of the fit), vectorised with ``transform_one`` and
  searched with ``SearchIndex.query`` (p50/p95/p99, each timed apart), against
  ``kneighbors`` on the same vector for a subset of them.

``python -m benchmarks.bench_index --corpus 20newsgroups|arxiv|bbc
[--sample-rows N] [--queries N] [--out FILE.json]``; ``run(corpus, ...)`` returns
the same numbers as a dict. Nothing is written unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

CORPORA = {"20newsgroups": "20newsgroups.jsonl.gz", "arxiv": "arxiv-2018-2019.jsonl.gz", "bbc": "bbc-news.jsonl.gz"}
SHARED_CORPORA = Path(
    os.environ.get("RECOMMENDER_SHARED_CORPORA", Path(__file__).resolve().parents[2] / "shared" / "corpora")
)
# Baselines run on every row up to this size, on a sample above it (unless told).
FULL_BASELINE_ROWS = 30_000
DEFAULT_SAMPLE_ROWS = 5_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_corpus(corpus: str) -> list[dict[str, str]]:
    """Records (id, title, body) of a shared corpus."""
    path = SHARED_CORPORA / CORPORA[corpus]
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Largest resident-set growth during a block, sampled every ``interval`` s.

    Sampling (not tracemalloc) also sees memory that C++ kernels allocate.
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def added(self) -> int:
        return self.peak - self.base


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of every thread of this process)."""
    cpu, wall = _cpu(), time.perf_counter()
    result = fn()
    return result, time.perf_counter() - wall, _cpu() - cpu


def bench_all_pairs(matrix: sp.csr_matrix, k: int, sample_rows: int | None, seed: int = 0) -> dict[str, Any]:
    """Ours on every row against sparse_dot_topn (2 threads) and naive kneighbors."""
    import sparse_dot_topn as sdt
    from sklearn.neighbors import NearestNeighbors

    from recommender.allpairs import all_pairs_topk

    n = matrix.shape[0]
    rows = np.sort(np.random.default_rng(seed).choice(n, sample_rows, replace=False)) if sample_rows else np.arange(n)
    scale = n / rows.size
    out: dict[str, Any] = {"rows": n, "k": k, "baseline_rows": int(rows.size), "extrapolated": bool(sample_rows)}

    log(f"all-pairs: ours on {n} rows")
    with PeakRSS() as mem:
        ours, wall, cpu = timed(lambda: all_pairs_topk(matrix, k, n_jobs=2))
    out["ours"] = {"wall_s": wall, "cpu_s": cpu, "peak_added_mb": mem.added / 2**20}

    log(f"all-pairs: sparse_dot_topn 2 threads on {rows.size} rows")
    transposed, t_wall, t_cpu = timed(lambda: matrix.T.tocsr())
    sub = matrix[rows]
    product, wall, cpu = timed(lambda: sdt.sp_matmul_topn(sub, transposed, top_n=k + 1, n_threads=2))
    out["sdt"] = {"wall_s": t_wall + wall * scale, "cpu_s": t_cpu + cpu * scale}

    log(f"all-pairs: sklearn kneighbors on {rows.size} rows")
    nn, f_wall, f_cpu = timed(lambda: NearestNeighbors(metric="cosine", algorithm="brute").fit(matrix))
    _, wall, cpu = timed(lambda: nn.kneighbors(sub, n_neighbors=k + 1))
    out["naive"] = {"wall_s": f_wall + wall * scale, "cpu_s": f_cpu + cpu * scale}

    for name in ("sdt", "naive"):
        out[f"ratio_wall_vs_{name}"] = out["ours"]["wall_s"] / out[name]["wall_s"]
        out[f"ratio_cpu_vs_{name}"] = out["ours"]["cpu_s"] / out[name]["cpu_s"]
    out["agreement_with_sdt"] = _agreement(ours.indices[rows], ours.scores[rows], product, rows, k)
    return out


def _agreement(indices: np.ndarray, scores: np.ndarray, product: sp.csr_matrix, rows: np.ndarray, k: int) -> float:
    """Share of rows whose neighbour set equals sparse_dot_topn's (self removed).

    Rows whose k-th and (k+1)-th sparse_dot_topn scores tie within 1e-6 count
    as equal when the scores agree, since either neighbour is then correct.
    """
    same = 0
    for i, row in enumerate(rows):
        start, stop = product.indptr[i], product.indptr[i + 1]
        cols, vals = product.indices[start:stop], product.data[start:stop]
        keep = cols != row
        cols, vals = cols[keep], vals[keep]
        order = np.lexsort((cols, -vals))[:k]
        theirs = set(cols[order][vals[order] > 0].tolist())
        mine = set(indices[i][indices[i] >= 0].tolist())
        if mine == theirs:
            same += 1
        elif len(mine) == len(theirs):
            mine_scores = np.sort(scores[i][indices[i] >= 0])
            same += bool(np.allclose(mine_scores, np.sort(vals[order][vals[order] > 0]), atol=1e-6))
    return same / rows.size


def make_queries(records: list[dict[str, str]], count: int, words: int, seed: int) -> list[str]:
    """Texts of about ``words`` words, each the concatenated bodies of random records."""
    rng = np.random.default_rng(seed)
    queries = []
    for _ in range(count):
        parts: list[str] = []
        total = 0
        while total < words:
            body = records[int(rng.integers(len(records)))]["body"].split()
            take = body[: words - total]
            parts.append(" ".join(take))
            total += max(len(take), 1)
        queries.append(" ".join(parts))
    return queries


def _percentiles(samples: np.ndarray) -> dict[str, float]:
    p50, p95, p99 = np.percentile(samples, [50, 95, 99])
    return {"p50_ms": p50 * 1e3, "p95_ms": p95 * 1e3, "p99_ms": p99 * 1e3}


def bench_queries(model: Any, matrix: sp.csr_matrix, texts: list[str], k: int, naive_queries: int) -> dict[str, Any]:
    """Vectorising and searching timed apart, against kneighbors on the same vectors."""
    from sklearn.neighbors import NearestNeighbors

    from recommender.search import SearchIndex

    index = SearchIndex.from_matrix(matrix, np.arange(matrix.shape[0]))
    vectors, vec_times, search_times = [], [], []
    for text in texts:
        start = time.perf_counter()
        columns, weights = model.transform_one("", text)
        middle = time.perf_counter()
        index.query(columns, weights, k)
        search_times.append(time.perf_counter() - middle)
        vec_times.append(middle - start)
        vectors.append((columns, weights))
    nn = NearestNeighbors(metric="cosine", algorithm="brute").fit(matrix)
    naive_times, agree = [], 0
    for columns, weights in vectors[:naive_queries]:
        query = sp.csr_matrix((weights, columns, [0, columns.size]), shape=(1, matrix.shape[1]))
        start = time.perf_counter()
        _, found = nn.kneighbors(query, n_neighbors=k)
        naive_times.append(time.perf_counter() - start)
        ours, _ = index.query(columns, weights, k)
        agree += set(ours.tolist()) == set(found[0].tolist())
    out: dict[str, Any] = {
        "queries": len(texts),
        "mean_terms": float(np.mean([c.size for c, _ in vectors])),
        "vectorise": _percentiles(np.array(vec_times)),
        "search": _percentiles(np.array(search_times)),
        "naive_search": {**_percentiles(np.array(naive_times)), "queries": len(naive_times)},
        "naive_same_set_share": agree / max(len(naive_times), 1),
    }
    out["ratio_p50_vs_naive"] = out["search"]["p50_ms"] / out["naive_search"]["p50_ms"]
    return out


def run(
    corpus: str,
    *,
    k: int = 10,
    sample_rows: int | None = None,
    n_queries: int = 1000,
    naive_queries: int = 100,
    query_words: int = 400,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the corpus (minus held-out query sources) and run both benchmarks."""
    from recommender.tfidf import TfidfModel

    records = load_corpus(corpus)
    rng = np.random.default_rng(seed)
    held_out = set(rng.choice(len(records), min(1000, len(records) // 20), replace=False).tolist())
    fitted = [r for i, r in enumerate(records) if i not in held_out]
    log(f"{corpus}: fitting {len(fitted)} articles ({len(held_out)} held out for queries)")
    model = TfidfModel(n_jobs=1).fit([r["title"] for r in fitted], [r["body"] for r in fitted])
    matrix = model.matrix_
    if sample_rows is None and matrix.shape[0] > FULL_BASELINE_ROWS:
        sample_rows = DEFAULT_SAMPLE_ROWS
    if sample_rows is not None and sample_rows >= matrix.shape[0]:
        sample_rows = None
    result: dict[str, Any] = {"corpus": corpus, "cpus": os.cpu_count(), "load_avg": os.getloadavg()}
    result["all_pairs"] = bench_all_pairs(matrix, k, sample_rows, seed)
    texts = make_queries([records[i] for i in sorted(held_out)], n_queries, query_words, seed)
    log(f"queries: {len(texts)} texts of ~{query_words} words")
    result["queries"] = bench_queries(model, matrix, texts, k, naive_queries)
    result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def format_table(result: dict[str, Any]) -> str:
    """The result as a plain-text table."""
    ap, q = result["all_pairs"], result["queries"]
    note = f" (extrapolated from {ap['baseline_rows']} sampled rows)" if ap["extrapolated"] else ""
    lines = [
        f"corpus {result['corpus']}: {ap['rows']} rows, top {ap['k']}, load average {result['load_avg'][0]:.2f}",
        f"{'all-pairs':<28}{'wall s':>10}{'cpu s':>10}{'ours/this wall':>16}{'ours/this cpu':>15}",
        f"{'ours (all rows)':<28}{ap['ours']['wall_s']:>10.2f}{ap['ours']['cpu_s']:>10.2f}",
    ]
    for name, label in (("sdt", "sparse_dot_topn 2 threads"), ("naive", "sklearn kneighbors")):
        row = ap[name]
        lines.append(
            f"{label:<28}{row['wall_s']:>10.2f}{row['cpu_s']:>10.2f}"
            f"{ap[f'ratio_wall_vs_{name}']:>16.3f}{ap[f'ratio_cpu_vs_{name}']:>15.3f}"
        )
    lines += [
        f"baselines{note}",
        f"ours: peak memory added {ap['ours']['peak_added_mb']:.0f} MB; process max RSS {result['max_rss_mb']:.0f} MB;"
        f" same neighbour sets as sparse_dot_topn on {ap['agreement_with_sdt']:.2%} of rows",
        f"free-text queries: {q['queries']} texts, {q['mean_terms']:.0f} distinct terms on average",
        f"{'':<28}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}",
    ]
    for name, label in (("vectorise", "vectorise (transform_one)"), ("search", "search (SearchIndex)")):
        row = q[name]
        lines.append(f"{label:<28}{row['p50_ms']:>10.3f}{row['p95_ms']:>10.3f}{row['p99_ms']:>10.3f}")
    row = q["naive_search"]
    lines.append(f"{'sklearn kneighbors':<28}{row['p50_ms']:>10.3f}{row['p95_ms']:>10.3f}{row['p99_ms']:>10.3f}")
    lines.append(
        f"search p50 ours/sklearn {q['ratio_p50_vs_naive']:.4f} (sklearn on {row['queries']} of the queries;"
        f" same top-{ap['k']} set on {q['naive_same_set_share']:.0%})"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=sorted(CORPORA), required=True)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--sample-rows", type=int, default=None, help="baseline rows (default: all up to 30k)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--naive-queries", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args(argv)
    result = run(
        args.corpus,
        k=args.k,
        sample_rows=args.sample_rows,
        n_queries=args.queries,
        naive_queries=args.naive_queries,
        seed=args.seed,
    )
    print(format_table(result))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
