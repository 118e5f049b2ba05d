"""Compaction: fold the change log into a new bundle, refitted from scratch, then forget the folded changes.

The current bundle keeps the articles it was fitted on (``articles.jsonl``);
the change log holds the upserts and deletes logged since (sequence numbers
above the bundle's ``log_seq``). :func:`compact` merges the two, fits a new
model with the bundle's own parameters, saves it as the new current bundle
with ``log_seq`` = the last change folded in, and only then truncates the
log. Every step before the switch of ``current`` leaves the old bundle and
the log as they were; a process killed after the switch and before the
truncation leaves changes that the new bundle already includes and that
replay skips (their sequence numbers are not above its ``log_seq``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .bundle import current_version, log_seq, prune, read_manifest, read_records, resolve, set_current, write_bundle
from .changelog import Change, open_log
from .corpus import Article, RecordError, parse_record
from .errors import BundleError, InvalidInputError
from .options import TrainOptions

LOCK_FILE = "compact.lock"


@dataclass(frozen=True)
class CompactResult:
    """What a compaction did: the new bundle, its articles, and how they differ from the old bundle's.

    ``compacted`` is False when there was nothing to fold in (``version`` is
    then the current bundle's). ``added``, ``edited`` and ``deleted`` count
    articles, not changes: an article upserted twice is edited once, an
    upsert that changes nothing edits nothing.
    """

    compacted: bool
    version: str
    articles: int
    added: int
    edited: int
    deleted: int
    log_seq: int
    changes: int
    seconds: float

    def summary(self) -> str:
        """One line for a person."""
        if not self.compacted:
            return f"nothing to compact: bundle {self.version} includes every logged change (seq {self.log_seq})"
        return (
            f"compacted {self.changes} change(s) through seq {self.log_seq} into {self.version}: "
            f"{self.articles} articles ({self.added} added, {self.edited} edited, {self.deleted} deleted), "
            f"{self.seconds:.1f} s"
        )


@contextmanager
def compaction_lock(models_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Hold ``<models_dir>/compact.lock`` exclusively; InvalidInputError at once when another process holds it.

    The lock is an ``flock``: the kernel releases it when its holder exits,
    however it exits, so a killed compaction never blocks the next one. The
    file itself stays (removing it would let two processes lock two files).
    """
    path = Path(models_dir) / LOCK_FILE
    handle = open(path, "a+b")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InvalidInputError(
                f"a compaction is already running in {str(models_dir)!r} (it holds {LOCK_FILE}): wait for it to finish"
            ) from None
        yield
    finally:
        handle.close()


def merge(base: Iterable[Article], changes: Iterable[Change]) -> dict[str, Article]:
    """The articles of ``base`` with ``changes`` applied in order, by id, in corpus order.

    An upsert of a known id replaces that article in place, of a new id
    appends it; a delete removes the article (a delete of an unknown id
    changes nothing). A change whose record is not a valid article, or names
    another id, is an InvalidInputError naming its sequence number.
    """
    merged = {article.id: article for article in base}
    for change in changes:
        if change.op == "delete":
            merged.pop(change.article_id, None)
            continue
        try:
            article = parse_record(change.record or {})
        except RecordError as exc:
            raise InvalidInputError(f"change {change.seq} (upsert of {change.article_id!r}): {exc.message}") from None
        if article.id != change.article_id:
            raise InvalidInputError(
                f"change {change.seq} is an upsert of {change.article_id!r} with a record of {article.id!r}"
            )
        merged[article.id] = article
    return merged


def bundle_articles(folder: Path) -> list[Article]:
    """The articles a bundle was fitted on, from its ``articles.jsonl`` (checksum verified)."""
    articles = []
    for number, record in enumerate(read_records(folder), 1):
        try:
            articles.append(parse_record(record))
        except RecordError as exc:
            raise BundleError(f"{folder / 'articles.jsonl'}: record {number}: {exc.message}") from None
    return articles


def compact(
    models_dir: str | os.PathLike[str],
    *,
    keep: int = 3,
    force: bool = False,
    progress: bool = False,
    log_url: str | None = None,
) -> CompactResult:
    """Fold the logged changes into a new current bundle, then truncate the log.

    Nothing to fold in (no change above the bundle's ``log_seq``) returns a
    result with ``compacted=False`` unless ``force`` (refit anyway). A second
    compaction of the same models directory fails at once (InvalidInputError);
    a bundle trained before bundles kept their articles is refused
    (BundleError). Any failure leaves the current bundle and the log as they were.
    ``log_url``: the log is in that database (see :func:`~recommender.changelog.open_log`).
    """
    started = time.perf_counter()
    root = Path(models_dir)
    resolve(root)  # a clear error when there is no current bundle, before the lock file is created
    with compaction_lock(root), open_log(root, log_url) as log:
        folder = resolve(root)
        manifest = read_manifest(folder)
        since = log_seq(manifest)
        last = max(log.last_seq(), since)
        changes = [change for change in log.since(since) if change.seq <= last]
        if not changes and not force:
            # Changes the bundle already includes (a compaction killed before its truncation) go now.
            log.truncate(since)
            return CompactResult(False, folder.name, int(manifest.get("articles", 0)), 0, 0, 0, since, 0, 0.0)
        base = bundle_articles(folder)
        merged = merge(base, changes)
        if not merged:
            raise InvalidInputError(f"the {len(changes)} logged change(s) delete every article: nothing to fit")
        options = TrainOptions.from_parameters(manifest.get("parameters"))
        from .fit import fit_parts

        parts = fit_parts(list(merged.values()), options, progress=progress, log_seq=last)
        new = write_bundle(root, parts, make_current=False)
        # A training that finished meanwhile made its own bundle current: it
        # must not be replaced by a refit of the bundle it replaced.
        if current_version(root) != folder.name:
            shutil.rmtree(new, ignore_errors=True)
            raise InvalidInputError(
                f"the current bundle changed from {folder.name} to {current_version(root)} during the compaction: "
                "nothing was changed; compact again"
            )
        set_current(root, new.name)
        prune(root, keep=keep)
        log.truncate(last)
    added, edited, deleted = _differences(base, merged)
    seconds = time.perf_counter() - started
    return CompactResult(True, new.name, len(merged), added, edited, deleted, last, len(changes), seconds)


def _differences(base: list[Article], merged: dict[str, Article]) -> tuple[int, int, int]:
    """(added, edited, deleted) articles of ``merged`` against ``base``."""
    before = {article.id: article for article in base}
    added = sum(1 for article_id in merged if article_id not in before)
    edited = sum(1 for article_id, article in before.items() if article_id in merged and merged[article_id] != article)
    deleted = sum(1 for article_id in before if article_id not in merged)
    return added, edited, deleted
