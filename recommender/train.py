"""Training: corpus files -> a fitted :class:`~recommender.Recommender` -> a new current bundle."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .corpus import CorpusInput, Problem, read_corpus
from .options import TrainOptions
from .recommend import Recommender


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


def train(
    corpus: Sequence[CorpusInput],
    models_dir: str | os.PathLike[str],
    options: TrainOptions | None = None,
    *,
    on_error: str = "fail",
    progress: bool = False,
    keep: int = 3,
    allow_empty: bool = False,
) -> TrainResult:
    """Read the corpus (files and sources), fit, and save a new bundle as the current one.

    Any failure leaves the models directory as it was: the bundle is only
    renamed into place and made current once it is complete.
    """
    options = options or TrainOptions()
    options.validate()
    started = time.perf_counter()
    report = read_corpus(corpus, on_error=on_error, progress=progress)
    read_seconds = round(time.perf_counter() - started, 3)
    rec = Recommender.fit(report.articles, options, progress=progress, allow_empty=allow_empty)
    timings = rec.manifest["timings"]
    timings["read"] = read_seconds
    before_write = time.perf_counter()
    folder = rec.save(models_dir, keep=keep)
    timings["write"] = round(time.perf_counter() - before_write, 3)
    return TrainResult(
        version=rec.version,
        folder=folder,
        articles=len(rec),
        vocabulary=int(rec.manifest["vocabulary"]),
        seconds=time.perf_counter() - started,
        bundle_bytes=sum(p.stat().st_size for p in folder.iterdir() if p.is_file()),
        skipped=report.skipped,
        skipped_summary=report.skipped_summary(),
        timings=timings,
    )
