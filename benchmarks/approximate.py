"""Exact against approximate training (issue 12): time, recall@10 of the exact lists, P@10 by label.

    python -m benchmarks.approximate ../shared/corpora/bbc-news.jsonl.gz [--rounds 2] [--group-size 300] [--spread 2]
        [--results benchmarks/results/2026-12-02-vm-approximate]

Both trainings run in this one process, interleaved round by round, on the
articles with their labels hidden (as ``recommender evaluate`` trains);
P@10 is :func:`recommender.evaluate.score_lists` of the stored lists (none for
a corpus without labels). ``--results STEM`` adds the run to ``STEM.json``
(replacing an earlier run of the same corpus and settings) and rewrites the
table ``STEM.md``.
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

from .report import machine


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
    parser.add_argument("--group-size", type=int, default=TrainOptions().approximate_group_size)
    parser.add_argument("--spread", type=int, default=TrainOptions().approximate_spread)
    parser.add_argument("--results", type=Path, default=None, help="add the run to STEM.json and STEM.md")
    args = parser.parse_args()
    articles = list(read_corpus([args.corpus]).articles)
    hidden = [hide_labels(a) for a in articles]
    exact_options = TrainOptions()
    approx_options = dataclasses.replace(
        exact_options, approximate=True, approximate_group_size=args.group_size, approximate_spread=args.spread
    )
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
        "group_size": args.group_size,
        "spread": args.spread,
        "seconds": times,
        "timings": {n: results[n].manifest["timings"] for n in results},
        "recall_at_10": round(recall_at(exact.arrays["neighbours"], approx.arrays["neighbours"]), 4),
        "p_at_10": {n: round(precision(results[n], articles), 4) for n in results} if _labelled(articles) else None,
    }
    print(json.dumps(report))
    if args.results is not None:
        write_results(args.results, report)


def _labelled(articles: list) -> bool:
    return any(labels_of(a, "category") for a in articles)


def write_results(stem: Path, report: dict) -> None:
    """Merge a run into STEM.json and rewrite the table STEM.md."""
    path = stem.with_suffix(".json")
    runs = json.loads(path.read_text(encoding="utf-8"))["runs"] if path.exists() else []
    same = ("corpus", "group_size", "spread")
    runs = [r for r in runs if any(r[key] != report[key] for key in same)] + [report]
    data = {"machine": machine(), "runs": runs}
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    lines = [
        "# Exact against approximate training",
        "",
        "`python -m benchmarks.approximate CORPUS --rounds R [--group-size G --spread S] --results STEM`: both "
        "trainings in one process, interleaved, fit only (no bundle written), labels hidden; medians of the rounds.",
        "",
        f"Machine: {data['machine']['cpu_model']}, {data['machine']['usable_cpus']} cores, "
        f"Python {data['machine']['python']}, code {data['machine']['code']}.",
        "",
        "| corpus | articles | groups of / spread | exact s (neighbours) | approximate s (neighbours) | speed-up "
        "| recall@10 of the exact lists | P@10 exact / approximate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        exact_s, approx_s = (float(np.median(r["seconds"][n])) for n in ("exact", "approximate"))
        p_at = r.get("p_at_10")
        quality = f"{p_at['exact']:.4f} / {p_at['approximate']:.4f}" if p_at else "no labels"
        lines.append(
            f"| {r['corpus']} | {r['articles']:,} | {r['group_size']} / {r['spread']} "
            f"| {exact_s:.1f} ({r['timings']['exact']['neighbours']:.1f}) "
            f"| {approx_s:.1f} ({r['timings']['approximate']['neighbours']:.1f}) | {exact_s / approx_s:.2f}x "
            f"| {r['recall_at_10']:.4f} | {quality} |"
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
