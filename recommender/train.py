"""Training: corpus files -> TF-IDF -> precomputed neighbours -> a new current bundle."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from .allpairs import all_pairs_topk
from .boilerplate import Stripper, find_boilerplate
from .bundle import BundleContents, write_bundle
from .corpus import EXCERPT_CHARS, Article, Problem, read_corpus
from .errors import InvalidInputError
from .semantic import augment, fit_semantic, rerank_neighbours
from .text import make_excerpt
from .tfidf import TfidfModel

MAX_K = 200


@dataclass
class TrainOptions:
    """Everything that shapes a model besides the corpus."""

    k: int = 20
    min_similarity: float = 0.05
    duplicate_threshold: float = 0.9
    semantic_components: int = 40
    semantic_weight: float = 0.7
    candidates: int = 50
    neighbourhood: int = 50
    neighbourhood_decay: float = 25.0
    neighbourhood_strength: float = 3.0
    recency_half_life_days: float | None = None
    tag_boost: float = 0.0
    section_boost: float = 0.0
    strip_boilerplate: bool = True
    title_weight: float = 2.0
    min_df: int = 3
    max_df: float = 0.5
    ngram_max: int = 1
    max_features: int | None = None
    n_jobs: int | None = None

    def validate(self) -> None:
        """Raise InvalidInputError naming the first option that breaks its rule."""
        if isinstance(self.k, bool) or not isinstance(self.k, int) or not 1 <= self.k <= MAX_K:
            raise InvalidInputError(f"k must be an integer in [1, {MAX_K}], got {self.k!r}")
        if not 0 <= self.min_similarity < 1:
            raise InvalidInputError(f"min_similarity must be in [0, 1), got {self.min_similarity!r}")
        if not 0 < self.duplicate_threshold <= 1:
            raise InvalidInputError(f"duplicate_threshold must be in (0, 1], got {self.duplicate_threshold!r}")
        if not 0 <= self.semantic_weight <= 1:
            raise InvalidInputError(f"semantic_weight must be in [0, 1], got {self.semantic_weight!r}")
        if isinstance(self.semantic_components, bool) or not 0 <= self.semantic_components <= 1000:
            raise InvalidInputError(
                f"semantic_components must be an integer in [0, 1000], got {self.semantic_components!r}"
            )
        if self.recency_half_life_days is not None and not self.recency_half_life_days > 0:
            raise InvalidInputError(
                f"recency_half_life_days must be a positive number of days, got {self.recency_half_life_days!r}"
            )
        for name in ("tag_boost", "section_boost"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise InvalidInputError(f"{name} must be a number in [0, 1], got {value!r}")
        if self.ngram_max not in (1, 2, 3):
            raise InvalidInputError(f"ngram_max must be 1, 2 or 3, got {self.ngram_max!r}")

    def model(self) -> TfidfModel:
        """The unfitted vectoriser these options describe."""
        return TfidfModel(
            title_weight=self.title_weight,
            min_df=self.min_df,
            max_df=self.max_df,
            ngram_range=(1, self.ngram_max),
            max_features=self.max_features,
            n_jobs=self.n_jobs,
        )


@dataclass
class TrainResult:
    """A summary of one training run."""

    version: str
    folder: Path
    articles: int
    vocabulary: int
    seconds: float
    bundle_bytes: int
    skipped: list[Problem] = field(default_factory=list)
    skipped_summary: str = ""
    timings: dict[str, float] = field(default_factory=dict)


def corpus_digest(articles: Sequence[Article]) -> str:
    """sha256 over every article's id, title and body, in corpus order."""
    digest = hashlib.sha256()
    for a in articles:
        for part in (a.id, a.title, a.body):
            digest.update(part.encode("utf-8"))
            digest.update(b"\x00")
    return digest.hexdigest()


def _metadata_line(article: Article) -> bytes:
    return json.dumps(article.public(), ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def _epoch(value: str | None) -> float:
    if not value:
        return np.nan
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def filter_arrays(articles: Sequence[Article]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Per-article arrays and maps the ranking filters need at query time."""
    sections = sorted({a.section for a in articles if a.section})
    code = {s: i for i, s in enumerate(sections)}
    section_codes = np.array([code[a.section] if a.section else -1 for a in articles], dtype=np.int32)
    published = np.array([_epoch(a.published_at) for a in articles], dtype=np.float64)
    tags: dict[str, list[int]] = {}
    for i, a in enumerate(articles):
        for tag in a.tags:
            tags.setdefault(tag.lower(), []).append(i)
    return ({"section_codes": section_codes, "published": published}, {"sections.json": sections, "tags.json": tags})


def duplicate_groups(indices: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Label each article with its near-duplicate group.

    Two articles whose cosine reaches ``threshold`` are near-duplicates (a
    re-post, a syndicated copy, an updated version); groups are the connected
    components of that relation. Such pairs always sit at the top of each
    other's precomputed lists, so the lists are enough to find them.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = indices.shape[0]
    rows, cols = np.nonzero((scores >= threshold) & (indices >= 0))
    graph = coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, indices[rows, cols])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int32)


def remove_boilerplate(articles: Sequence[Article]) -> tuple[list[Article], list[str]]:
    """Articles with template segments removed from body and derived excerpt, and the segments found."""
    found = find_boilerplate([a.body for a in articles])
    if not found:
        return list(articles), []
    strip = Stripper(found)
    cleaned = []
    for a in articles:
        body = strip(a.body)
        if body == a.body:
            cleaned.append(a)
            continue
        derived = a.excerpt == make_excerpt(a.body or a.title, EXCERPT_CHARS)
        excerpt = make_excerpt(body or a.title, EXCERPT_CHARS) if derived else strip(a.excerpt or "")
        cleaned.append(dataclasses.replace(a, body=body, excerpt=excerpt or None))
    return cleaned, found


def _stopwatch():  # type: ignore[no-untyped-def]
    """A function returning the seconds since its previous call (rounded to ms)."""
    last = [time.perf_counter()]

    def lap() -> float:
        now = time.perf_counter()
        elapsed, last[0] = now - last[0], now
        return round(elapsed, 3)

    return lap


def build_contents(articles: Sequence[Article], options: TrainOptions, progress: bool = False) -> BundleContents:
    """Fit the model and precompute neighbours; nothing is written."""
    options.validate()
    timings: dict[str, float] = {}
    _lap = _stopwatch()
    digest = corpus_digest(articles)
    boilerplate: list[str] = []
    if options.strip_boilerplate:
        articles, boilerplate = remove_boilerplate(articles)
    timings["boilerplate"] = _lap()
    model = options.model().fit([a.title for a in articles], [a.body for a in articles])
    timings["vectorise"] = _lap()
    ids = [a.id for a in articles]
    tie_key = np.empty(len(ids), dtype=np.int64)
    tie_key[np.argsort(np.array(ids, dtype=object), kind="stable")] = np.arange(len(ids))
    semantic = options.semantic_weight > 0 and options.semantic_components > 1
    pool = max(options.k, options.candidates) if semantic else options.k
    bar = _progress_bar(len(ids), progress)
    try:
        candidates = all_pairs_topk(
            model.matrix_,
            pool,
            tie_key=tie_key,
            min_similarity=options.min_similarity,
            n_jobs=options.n_jobs,
            progress=bar.update if bar is not None else None,
        )
    finally:
        if bar is not None:
            bar.close()
    timings["neighbours"] = _lap()
    extra: dict[str, np.ndarray] = {}
    vectors = np.zeros((len(ids), 0), np.float32)
    if semantic:
        terms, vectors = fit_semantic(model.matrix_, options.semantic_components, n_jobs=options.n_jobs or 2)
        augmented = augment(
            vectors,
            candidates.indices,
            count=options.neighbourhood,
            decay=options.neighbourhood_decay,
            strength=options.neighbourhood_strength,
        )
        extra = {"lsa_terms": terms, "lsa_vectors": vectors, "lsa_augmented": augmented}
        vectors = augmented
    neighbours = rerank_neighbours(
        candidates, vectors, options.semantic_weight if semantic else 0.0, options.k, tie_key
    )
    if semantic:
        timings["semantic"] = _lap()
    arrays, side = filter_arrays(articles)
    arrays.update(extra)
    arrays["dup_group"] = duplicate_groups(candidates.indices, candidates.scores, options.duplicate_threshold)
    parameters = {
        **model.get_params(),
        "k": options.k,
        "min_similarity": options.min_similarity,
        "duplicate_threshold": options.duplicate_threshold,
        "semantic_components": int(vectors.shape[1]),
        "semantic_weight": options.semantic_weight if semantic else 0.0,
        "candidates": pool,
        "neighbourhood": options.neighbourhood,
        "neighbourhood_decay": options.neighbourhood_decay,
        "neighbourhood_strength": options.neighbourhood_strength,
        "recency_half_life_days": options.recency_half_life_days,
        "tag_boost": options.tag_boost,
        "section_boost": options.section_boost,
        "strip_boilerplate": options.strip_boilerplate,
    }
    summary = {
        "articles": len(ids),
        "vocabulary": len(model.terms_),
        "corpus_digest": digest,
        "sections": len(side["sections.json"]),
        "boilerplate": boilerplate[:100],
        "timings": timings,
    }
    timings["lists"] = _lap()
    return BundleContents(
        vectorizer=model,
        matrix=model.matrix_,
        neighbours=neighbours.indices,
        neighbour_scores=neighbours.scores,
        tie_key=tie_key,
        ids=ids,
        metadata=[_metadata_line(a) for a in articles],
        parameters=parameters,
        summary=summary,
        extra_arrays=arrays,
        extra_json=side,
    )


def _progress_bar(total: int, enabled: bool):  # type: ignore[no-untyped-def]
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="article", desc="neighbours", file=sys.stderr, mininterval=0.5, dynamic_ncols=True)


def train(
    corpus: Sequence[str | os.PathLike[str]],
    models_dir: str | os.PathLike[str],
    options: TrainOptions | None = None,
    *,
    on_error: str = "fail",
    progress: bool = False,
    keep: int = 3,
) -> TrainResult:
    """Read the corpus, fit, precompute neighbours and write a new current bundle.

    Any failure leaves the models directory as it was: the bundle is only
    renamed into place and made current once it is complete.
    """
    options = options or TrainOptions()
    options.validate()
    started = time.perf_counter()
    lap = _stopwatch()
    report = read_corpus(corpus, on_error=on_error)
    read_seconds = lap()
    contents = build_contents(report.articles, options, progress=progress)
    lap()
    contents.summary["timings"] = {"read": read_seconds, **contents.summary["timings"]}
    folder = write_bundle(models_dir, contents, keep=keep)
    timings = {**contents.summary["timings"], "write": lap()}
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    return TrainResult(
        version=folder.name,
        folder=folder,
        articles=len(report.articles),
        vocabulary=contents.summary["vocabulary"],
        seconds=time.perf_counter() - started,
        bundle_bytes=size,
        skipped=report.skipped,
        skipped_summary=report.skipped_summary(),
        timings=timings,
    )
