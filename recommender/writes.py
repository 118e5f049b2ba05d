"""Logged writes: upserts and deletes appended to the change log, checked against the live state.

The live state is the current bundle's articles with the logged changes
above its ``log_seq`` applied. Appending is all a write does: every process
that serves the models directory polls the log, so these work whether a
server runs or not.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from .bundle import log_seq, read_manifest, resolve, verify
from .changelog import ChangeLogLike, open_log
from .corpus import Article, article_record
from .errors import InvalidInputError, UnknownArticleError
from .schema import IDS_FILE


@dataclass(frozen=True)
class Logged:
    """The sequence numbers of the changes one write logged."""

    first: int
    last: int
    count: int


def bundle_ids(folder: Path) -> list[str]:
    """The article ids of a bundle folder (``ids.txt``, checksum verified), without loading the model."""
    manifest = read_manifest(folder)
    verify(folder, {**manifest, "files": {IDS_FILE: manifest["files"].get(IDS_FILE, {})}})
    text = (folder / IDS_FILE).read_text(encoding="utf-8")
    return text.split("\n") if text else []


def live_ids(models_dir: str | os.PathLike[str], log: ChangeLogLike | None = None) -> set[str]:
    """The ids of the live state: the current bundle's, plus logged upserts, minus logged deletes.

    Only the changes above the bundle's ``log_seq`` count (the others are in
    the bundle already). BundleError when there is no current bundle.
    ``log``: the change log to read (default: the models directory's SQLite one).
    """
    folder = resolve(models_dir)
    ids = set(bundle_ids(folder))
    with open_log(models_dir) if log is None else nullcontext(log) as changes:
        for change in changes.since(log_seq(read_manifest(folder))):
            if change.op == "upsert":
                ids.add(change.article_id)
            else:
                ids.discard(change.article_id)
    return ids


def log_upserts(
    models_dir: str | os.PathLike[str], articles: Sequence[Article], *, log_url: str | None = None
) -> Logged:
    """Log one upsert per article (its :func:`~recommender.corpus.article_record`), all or none.

    Needs a current bundle (BundleError otherwise): the changes apply to it.
    ``log_url``: the log is in that database (see :func:`~recommender.changelog.open_log`).
    """
    if not articles:
        raise InvalidInputError("no article to upsert")
    resolve(models_dir)
    with open_log(models_dir, log_url) as log:
        seqs = log.append_many(("upsert", a.id, article_record(a)) for a in articles)
    return Logged(seqs[0], seqs[-1], len(seqs))


def log_deletes(
    models_dir: str | os.PathLike[str], article_ids: Sequence[str], *, log_url: str | None = None
) -> Logged:
    """Log one delete per id, all or none; every id must be live and given once.

    ``log_url`` as for :func:`log_upserts`. UnknownArticleError for an id that is not live (nothing is logged),
    InvalidInputError for an id given twice.
    """
    if not article_ids:
        raise InvalidInputError("no article id to delete")
    seen: set[str] = set()
    for article_id in article_ids:
        if article_id in seen:
            raise InvalidInputError(f"article id {article_id!r} is given twice")
        seen.add(article_id)
    with open_log(models_dir, log_url) as log:
        # Checked and appended with the same connection; a write that slips in
        # between (another process deleting the same id) logs a delete that
        # replay ignores, as it ignores any delete of an unknown id.
        live = live_ids(models_dir, log)
        for article_id in article_ids:
            if article_id not in live:
                raise UnknownArticleError(article_id)
        seqs = log.append_many(("delete", article_id, None) for article_id in article_ids)
    return Logged(seqs[0], seqs[-1], len(seqs))
