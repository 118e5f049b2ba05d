"""Offline relevance evaluation against a labeled corpus.

Every article is a query. The label field is hidden from the model (it is
trained on title and body only), items whose body is identical to the
query's are not scored (as the outside checker does), and the same metrics
are computed in the same run for the naive baseline: scikit-learn's default
``TfidfVectorizer`` with brute-force cosine ``NearestNeighbors``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .corpus import Article, CorpusInput, read_corpus
from .errors import InvalidInputError
from .options import TrainOptions

_SPARE = 10


def labels_of(article: Article, field: str) -> frozenset[str]:
    """The label set of an article: a single value or a list."""
    if field in ("section", "category"):
        value: Any = article.section
    elif field == "tags":
        value = list(article.tags)
    else:
        value = article.extra.get(field)
    if value is None:
        return frozenset()
    if isinstance(value, (list, tuple)):
        return frozenset(str(v) for v in value)
    return frozenset([str(value)])


def hide_labels(article: Article, keep: Sequence[str] = ()) -> Article:
    """The article as the model sees it in an evaluation: no section, no tags, no extra.

    ``keep`` names fields ("tags", "section") left visible, to measure a boost
    on a field that is not the label.
    """
    return dataclasses.replace(
        article,
        section=article.section if "section" in keep else None,
        tags=article.tags if "tags" in keep else (),
        extra={},
    )


@dataclasses.dataclass
class Metrics:
    """Relevance of one method's lists."""

    method: str
    k: int
    precision: float
    ndcg: float
    mrr: float
    coverage: float
    duplicate_share: float
    full_share: float
    per_label: dict[str, float]
    orphans: list[str]
    seconds: float

    def row(self) -> dict[str, Any]:
        """The headline numbers, for tables."""
        return {
            "method": self.method,
            f"P@{self.k}": round(self.precision, 4),
            f"nDCG@{self.k}": round(self.ndcg, 4),
            "MRR": round(self.mrr, 4),
            "coverage": round(self.coverage, 4),
            "dup share": round(self.duplicate_share, 4),
            "orphans": len(self.orphans),
            "seconds": round(self.seconds, 1),
        }


def score_lists(
    method: str,
    k: int,
    ids: Sequence[str],
    lists: Sequence[Sequence[str]],
    labels: dict[str, frozenset[str]],
    bodies: dict[str, str],
    seconds: float,
) -> Metrics:
    """Metrics of ranked id lists (one per query, best first, possibly longer than k)."""
    label_sizes: dict[str, int] = defaultdict(int)
    for lab in labels.values():
        for value in lab:
            label_sizes[value] += 1
    hits_total = ndcg_total = rr_total = 0.0
    covered = full = dup_boxes = 0
    per_label_hits: dict[str, float] = defaultdict(float)
    per_label_n: dict[str, int] = defaultdict(int)
    orphans = []
    for qid, items in zip(ids, lists, strict=True):
        body = bodies[qid]
        kept = [i for i in items if i != qid and (not body or bodies.get(i) != body)][:k]
        rel = [bool(labels.get(i, frozenset()) & labels[qid]) for i in kept]
        hits = sum(rel)
        hits_total += hits
        if kept:
            covered += 1
        else:
            orphans.append(qid)
        full += len(kept) == k
        item_bodies = [bodies.get(i) for i in kept if bodies.get(i)]
        dup_boxes += len(item_bodies) != len(set(item_bodies))
        dcg = sum(1.0 / math.log2(r + 2) for r, ok in enumerate(rel) if ok)
        n_relevant = max(0, max((label_sizes[v] for v in labels[qid]), default=0) - 1)
        ideal = sum(1.0 / math.log2(r + 2) for r in range(min(k, n_relevant)))
        ndcg_total += dcg / ideal if ideal else 0.0
        rr_total += next((1.0 / (r + 1) for r, ok in enumerate(rel) if ok), 0.0)
        for value in labels[qid]:
            per_label_hits[value] += hits / k
            per_label_n[value] += 1
    n = max(len(ids), 1)
    return Metrics(
        method=method,
        k=k,
        precision=hits_total / (k * n),
        ndcg=ndcg_total / n,
        mrr=rr_total / n,
        coverage=covered / n,
        duplicate_share=dup_boxes / n,
        full_share=full / n,
        per_label={v: round(per_label_hits[v] / per_label_n[v], 4) for v in sorted(per_label_n)},
        orphans=orphans,
        seconds=seconds,
    )


def _ours(articles: Sequence[Article], options: TrainOptions, k: int, progress: bool) -> tuple[list[list[str]], float]:
    from .recommend import Recommender

    started = time.perf_counter()
    rec = Recommender.fit(articles, options, progress=progress)
    lists = [[item.id for item in rec.related(a.id, min(k + _SPARE, 100)).items] for a in articles]
    return lists, time.perf_counter() - started


def _baseline(articles: Sequence[Article], k: int) -> tuple[list[list[str]], float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.neighbors import NearestNeighbors

    started = time.perf_counter()
    matrix = TfidfVectorizer().fit_transform([f"{a.title} {a.body}" for a in articles])
    n_neighbors = min(len(articles), k + _SPARE + 1)
    nn = NearestNeighbors(n_neighbors=n_neighbors, metric="cosine", algorithm="brute").fit(matrix)
    _, neighbours = nn.kneighbors(matrix)
    ids = [a.id for a in articles]
    lists = [[ids[j] for j in row if j != i] for i, row in enumerate(neighbours)]
    return lists, time.perf_counter() - started


@dataclasses.dataclass
class EvaluationReport:
    """What ``recommender evaluate`` measured."""

    corpus: list[str]
    label_field: str
    k: int
    articles: int
    unlabeled: int
    ours: Metrics
    baseline: Metrics | None
    parameters: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of everything measured."""
        return {
            "corpus": self.corpus,
            "label_field": self.label_field,
            "k": self.k,
            "articles": self.articles,
            "unlabeled": self.unlabeled,
            "parameters": self.parameters,
            "ours": dataclasses.asdict(self.ours),
            "baseline": dataclasses.asdict(self.baseline) if self.baseline else None,
        }

    def markdown(self) -> str:
        """The headline table (ours beside the baseline) and per-label precision."""
        rows = [self.ours.row()] + ([self.baseline.row()] if self.baseline else [])
        head = list(rows[0])
        lines = [
            f"Evaluation of {', '.join(self.corpus)} ({self.articles} articles, label `{self.label_field}`, "
            f"k={self.k}; exact duplicates of the query not scored)",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
        lines += [
            "",
            f"| label | ours P@{self.k} |" + (f" baseline P@{self.k} |" if self.baseline else ""),
            "|---|---|" + ("---|" if self.baseline else ""),
        ]
        for label, value in self.ours.per_label.items():
            base = f" {self.baseline.per_label.get(label, 0):.4f} |" if self.baseline else ""
            lines.append(f"| {label} | {value:.4f} |{base}")
        return "\n".join(lines) + "\n"


def evaluate(
    corpus: Sequence[CorpusInput],
    *,
    label_field: str = "category",
    k: int = 10,
    options: TrainOptions | None = None,
    baseline: bool = True,
    on_error: str = "fail",
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    keep_fields: Sequence[str] = (),
) -> EvaluationReport:
    """Train on the corpus without its labels and measure relevance against them.

    Section and tags are hidden from the model too, unless named in
    ``keep_fields`` (never the label field itself: that would leak the answer).
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 50:
        raise InvalidInputError(f"k must be an integer in [1, 50], got {k!r}")
    options = options or TrainOptions()
    unknown = set(keep_fields) - {"tags", "section"}
    if unknown:
        raise InvalidInputError(f"keep_fields may only name 'tags' or 'section', got {sorted(unknown)}")
    # An article's section is read from its "section" or "category" field.
    label_as_field = "section" if label_field in ("section", "category") else label_field
    if label_as_field in keep_fields:
        raise InvalidInputError(f"the label field {label_field!r} cannot be shown to the model")
    if options.k < k + _SPARE:
        options = dataclasses.replace(options, k=k + _SPARE)
    articles = read_corpus(corpus, on_error=on_error).articles
    labels = {a.id: labels_of(a, label_field) for a in articles}
    unlabeled = sum(1 for v in labels.values() if not v)
    if unlabeled == len(articles):
        raise InvalidInputError(f"no article has the label field {label_field!r}")
    bodies = {a.id: a.body.strip() for a in articles}
    hidden = [hide_labels(a, keep_fields) for a in articles]
    ids = [a.id for a in articles]
    say = log or (lambda _m: None)
    say(f"training on {len(hidden)} articles without {label_field!r}")
    lists, seconds = _ours(hidden, options, k, progress)
    ours = score_lists("recommender", k, ids, lists, labels, bodies, seconds)
    base = None
    if baseline:
        say("naive baseline: TfidfVectorizer() + NearestNeighbors(cosine, brute)")
        base_lists, base_seconds = _baseline(hidden, k)
        base = score_lists(
            "baseline: TfidfVectorizer + NearestNeighbors", k, ids, base_lists, labels, bodies, base_seconds
        )
    return EvaluationReport(
        corpus=[str(c) for c in corpus],
        label_field=label_field,
        k=k,
        articles=len(articles),
        unlabeled=unlabeled,
        ours=ours,
        baseline=base,
        parameters={**dataclasses.asdict(options), "visible_fields": sorted(keep_fields)},
    )


def write_report(report: EvaluationReport, folder: Path) -> list[Path]:
    """Write evaluation.json, evaluation.md and (with matplotlib) evaluation.png."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "evaluation.json", folder / "evaluation.md"]
    written[0].write_text(json.dumps(report.to_json(), indent=1), encoding="utf-8")
    written[1].write_text(report.markdown(), encoding="utf-8")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return written
    names = [f"P@{report.k}", f"nDCG@{report.k}", "MRR", "coverage"]
    ours = [report.ours.precision, report.ours.ndcg, report.ours.mrr, report.ours.coverage]
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    x = np.arange(len(names))
    width = 0.38
    ax.bar(x - width / 2, ours, width, label="recommender")
    if report.baseline:
        base = [report.baseline.precision, report.baseline.ndcg, report.baseline.mrr, report.baseline.coverage]
        ax.bar(x + width / 2, base, width, label="baseline (TfidfVectorizer + NN)")
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{Path(report.corpus[0]).name}: relevance (label {report.label_field})")
    ax.legend(loc="lower right")
    for i, v in enumerate(ours):
        ax.text(i - width / 2, v + 0.01, f"{v:.3f}", ha="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / "evaluation.png")
    plt.close(fig)
    written.append(folder / "evaluation.png")
    return written
