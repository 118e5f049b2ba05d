"""Training: corpus files -> a fitted :class:`~recommender.Recommender` -> a new current bundle."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .corpus import CorpusInput, Problem, read_corpus
from .options import TrainOptions
from .recommend import Recommender
from .remote import RemoteStore, is_url, publish_bundle


@dataclass
class TrainResult:
    """A summary of one training run."""

    version: str
    folder: Path | str  # the bundle's folder, or its URL in shared storage
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
    renamed into place and made current once it is complete. ``models_dir``
    may be an fsspec URL (``s3://bucket/models``; needs ``recommender[remote]``):
    the bundle is then built in a local temporary folder, uploaded, and named
    in the store's ``CURRENT`` file last (see :mod:`recommender.remote`).
    """
    options = options or TrainOptions()
    options.validate()
    # A URL is opened first: a missing fsspec or backend is said before the corpus is read and fitted.
    store = RemoteStore(os.fspath(models_dir)) if is_url(models_dir) else None
    started = time.perf_counter()
    report = read_corpus(corpus, on_error=on_error, progress=progress)
    read_seconds = round(time.perf_counter() - started, 3)
    rec = Recommender.fit(report.articles, options, progress=progress, allow_empty=allow_empty)
    timings = rec.manifest["timings"]
    timings["read"] = read_seconds
    before_write = time.perf_counter()
    folder: Path | str
    if store is not None:
        folder, bundle_bytes = _save_to_store(rec, store, keep)
    else:
        folder = rec.save(models_dir, keep=keep)
        bundle_bytes = _size(folder)
    timings["write"] = round(time.perf_counter() - before_write, 3)
    return TrainResult(
        version=rec.version,
        folder=folder,
        articles=len(rec),
        vocabulary=int(rec.manifest["vocabulary"]),
        seconds=time.perf_counter() - started,
        bundle_bytes=bundle_bytes,
        skipped=report.skipped,
        skipped_summary=report.skipped_summary(),
        timings=timings,
    )


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def _save_to_store(rec: Recommender, store: RemoteStore, keep: int) -> tuple[str, int]:
    """Write the bundle in a local temporary folder, then publish it to the store; its URL and size."""
    with tempfile.TemporaryDirectory(prefix="recommender-bundle-") as tmp:
        folder = rec.save(tmp, keep=1)
        return publish_bundle(folder, store, keep=keep), _size(folder)
