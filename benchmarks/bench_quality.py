"""Suite 5: relevance, so that speed and quality are read together.

Runs the library's own evaluation (``recommender evaluate``, i.e.
``recommender.evaluate.evaluate``) with default settings on BBC News and
20 Newsgroups: every article is a query, the model is trained without the
label, exact duplicates of the query are not scored, and the naive baseline
(default ``TfidfVectorizer`` + ``NearestNeighbors`` cosine) is computed in the
same run.
"""

from __future__ import annotations

import sys
from typing import Any

from .synthetic import corpus_path, missing_reason


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run(corpora: list[str]) -> dict[str, Any]:
    from recommender.evaluate import evaluate

    out: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for name in corpora:
        path = corpus_path(name)
        if path is None:
            skipped[name] = missing_reason(name)
            continue
        log(f"quality: recommender evaluate on {name}")
        report = evaluate([path], label_field="category", k=10, baseline=True, log=log)
        data = report.to_json()
        # The orphan lists can be long; the report needs their count only.
        for key in ("ours", "baseline"):
            if data.get(key):
                data[key]["orphans_count"] = len(data[key].pop("orphans"))
        out.append(
            {
                "corpus": name,
                "markdown": report.markdown(),
                "ours": report.ours.row(),
                "baseline": report.baseline.row() if report.baseline else None,
                "details": data,
            }
        )
        p_ours = report.ours.precision
        p_base = report.baseline.precision if report.baseline else float("nan")
        log(f"quality {name}: P@10 {p_ours:.4f} (baseline {p_base:.4f})")
    return {"corpora": out, "skipped": skipped}
