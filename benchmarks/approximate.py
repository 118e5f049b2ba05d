"""Exact against approximate training (issue 12): time, recall@10 of the exact lists, P@10 by label.

    python -m benchmarks.approximate ../shared/corpora/bbc-news.jsonl.gz [--rounds 2] [--candidates 100]

Both trainings run in this one process, interleaved round by round, on the
articles with their labels hidden (as ``recommender evaluate`` trains);
P@10 is :func:`recommender.evaluate.score_lists` of the stored lists.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from recommender.corpus import read_corpus
from recommender.evaluate import hide_labels, labels_of, score_lists
from recommender.fit import fit_parts
from recommender.options import TrainOptions


def recall_at(exact: np.ndarray, approx: np.ndarray, k: int = 10) -> float:
    """Share of the exact lists' first k neighbours that the approximate first k hold."""
    hit = total = 0
    for e, a in zip(exact[:, :k], approx[:, :k], strict=True):
        wanted = e[e >= 0]
        hit += np.isin(wanted, a).sum()
        total += wanted.size
    return hit / max(total, 1)


def precision(parts: object, articles: list, k: int = 10) -> float:
    ids = [a.id for a in articles]
    labels = {a.id: labels_of(a, "category") for a in articles}
    bodies = {a.id: a.body.strip() for a in articles}
    rows = parts.arrays["neighbours"]  # type: ignore[attr-defined]
    lists = [[ids[j] for j in row if j >= 0] for row in rows]
    return score_lists("m", k, ids, lists, labels, bodies, 0.0).precision


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--candidates", type=int, default=TrainOptions().approximate_candidates)
    args = parser.parse_args()
    articles = list(read_corpus([args.corpus]).articles)
    hidden = [hide_labels(a) for a in articles]
    exact_options = TrainOptions()
    approx_options = dataclasses.replace(exact_options, approximate=True, approximate_candidates=args.candidates)
    times: dict[str, list[float]] = {"exact": [], "approximate": []}
    results = {}
    for _ in range(args.rounds):
        for name, options in (("exact", exact_options), ("approximate", approx_options)):
            started = time.perf_counter()
            results[name] = fit_parts(hidden, options)
            times[name].append(round(time.perf_counter() - started, 2))
    exact, approx = results["exact"], results["approximate"]
    report = {
        "corpus": args.corpus.name,
        "articles": len(articles),
        "candidates": args.candidates,
        "seconds": times,
        "neighbours_step": {n: results[n].manifest["timings"]["neighbours"] for n in results},
        "recall_at_10": round(recall_at(exact.arrays["neighbours"], approx.arrays["neighbours"]), 4),
        "p_at_10": {n: round(precision(results[n], articles), 4) for n in results},
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
