"""The model the service answers from: swapped atomically on reload, kept in step with the change log."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from ..bundle import CURRENT
from ..changelog import ChangeLogLike, open_log
from ..errors import BundleError, LogUnavailableError
from ..recommend import Recommender
from ..remote import use_cached

if TYPE_CHECKING:
    from ..live import Applied
    from ..remote import RemoteStore

log = logging.getLogger("recommender.api")

_NEVER = object()
# How many applied changes are remembered for the write routes that logged them
# (a route reads its own change's outcome right after applying it).
_REMEMBERED = 10_000


class ModelHolder:
    """Holds the current :class:`Recommender` and applies the change log to it.

    A request reads ``holder.current`` once and uses that object to the end.
    A reload builds the new model completely in a thread (``read``: load the
    bundle and replay the log), then, on the event loop, catches it up with
    the log and swaps it in with one assignment (``install``), so no answer
    mixes two models. A bundle that fails verification leaves the old model
    serving.

    The model is not safe to change while it answers: every ``sync`` (which
    applies new log changes to it) must run on the event loop, where the
    query routes run, so that it never overlaps one.

    ``link_changed`` tells whether ``models/current`` points somewhere else
    than at the last load (successful or not): every worker polls it, so all
    of them follow a new link, and a refused bundle is not tried again until
    the link moves.

    The change log is the models directory's, or the one in the database at
    ``log_url`` (shared by replicas on several machines).

    With a ``remote`` store the link is the store's ``CURRENT`` file instead,
    as last read by :meth:`refresh` (a network read: the watcher runs it in a
    thread), and ``models_dir`` is the local cache the bundles are fetched
    into and loaded from.
    """

    def __init__(self, models_dir: Path, log_url: str | None = None, remote: RemoteStore | None = None) -> None:
        self.models_dir = models_dir
        self.log_url = log_url
        self.remote = remote
        self._remote_link: str | None = None
        self.current: Recommender | None = None
        self.loaded_at: float | None = None
        self._loaded_link: object = _NEVER
        self._lock = threading.Lock()
        self._logs = threading.local()  # an SQLite connection belongs to the thread that opened it
        self._applied: OrderedDict[int, Applied] = OrderedDict()

    def link(self) -> str | None:
        """Where ``models/current`` points now (None when there is no link); the remote store's
        ``CURRENT`` as last refreshed."""
        if self.remote is not None:
            return self._remote_link
        try:
            return os.readlink(Path(self.models_dir) / CURRENT)
        except OSError:
            return None

    def refresh(self) -> None:
        """Read the remote store's ``CURRENT`` (one small read; slow: run it in a thread); a no-op locally.

        A store that cannot be read leaves the last value (the model serving
        stays), with a warning.
        """
        if self.remote is None:
            return
        try:
            self._remote_link = self.remote.current()
        except BundleError as exc:
            log.warning("model watcher: %s", exc)

    def link_changed(self) -> bool:
        """True when ``models/current`` moved since the last load attempt."""
        return self.link() != self._loaded_link

    def change_log(self) -> ChangeLogLike:
        """This thread's reader of the change log."""
        reader: ChangeLogLike | None = getattr(self._logs, "log", None)
        if reader is None:
            reader = self._logs.log = open_log(self.models_dir, self.log_url)
        return reader

    def close(self) -> None:
        """Close this thread's reader of the change log."""
        reader: ChangeLogLike | None = getattr(self._logs, "log", None)
        if reader is not None:
            reader.close()
            self._logs.log = None

    def read(self) -> Recommender:
        """Load the current bundle and replay the change log (slow: run it in a thread); BundleError if bad."""
        with self._lock:
            self.refresh()
            self._loaded_link = self.link()
            version = self._fetch()  # BundleError (logged) when the remote bundle is missing or damaged
            try:
                rec = Recommender.load(self.models_dir, version, log_url=self.log_url)
            except LogUnavailableError as exc:
                # The bundle serves meanwhile: `install` and the follower catch it up once the database answers.
                log.error("serving the bundle without the live changes until the log answers: %s", exc)
                rec = Recommender.load(self.models_dir, version, replay=False)
            except BundleError as exc:
                log.error("model not loaded: %s", exc)
                if self.remote is not None:
                    # Refused from the cache (damaged there): fetched afresh at the next attempt.
                    shutil.rmtree(Path(self.models_dir) / version, ignore_errors=True)
                raise
            if self.remote is not None:
                try:
                    use_cached(Path(self.models_dir), version)
                except (OSError, BundleError) as exc:  # bookkeeping of the cache: the model serves anyway
                    log.warning("cache folder %s: %s", self.models_dir, exc)
            return rec

    def _fetch(self) -> str:
        """The version to load: ``current``, or the remote one, downloaded into the cache first."""
        if self.remote is None:
            return CURRENT
        version = self._loaded_link
        try:
            if not isinstance(version, str):
                raise BundleError(f"no current model in {self.remote.url!r}: train a model first")
            self.remote.fetch(version, Path(self.models_dir))
        except BundleError as exc:
            log.error("model not loaded: %s", exc)
            raise
        return version

    def has_log(self) -> bool:
        """Whether the change log exists (a service that is never written to has none)."""
        return self.change_log().exists()

    def install(self, rec: Recommender) -> Recommender:
        """Catch ``rec`` up with the log and serve it (on the event loop); as it is if the log is unavailable."""
        try:
            if self.has_log():
                self._remember(rec.catch_up(self.change_log()))
        except LogUnavailableError as exc:
            log.error("change log: %s", exc)
        self.current = rec
        self.loaded_at = time.time()
        log.info("serving model %s (%d articles)", rec.version, len(rec))
        return rec

    def load(self) -> Recommender:
        """``read`` and ``install`` in the calling thread: at start-up, before the loop serves requests."""
        return self.install(self.read())

    async def reload(self) -> Recommender:
        """Load the current bundle in a thread and serve it; BundleError (old model kept) if it is bad."""
        rec = await asyncio.to_thread(self.read)
        return self.install(rec)

    def sync(self) -> list[Applied]:
        """Apply the log's changes the current model has not seen (on the event loop); what was applied."""
        rec = self.current
        if rec is None or not self.has_log():
            return []
        applied = rec.catch_up(self.change_log())
        self._remember(applied)
        return applied

    def behind(self) -> bool:
        """True when the log holds changes the current model has not applied."""
        rec = self.current
        return rec is not None and self.has_log() and self.change_log().last_seq() > rec.log_seq

    def outcome(self, seq: int) -> Applied | None:
        """What applying change ``seq`` did, if this process applied it since the last load (forgotten once read)."""
        return self._applied.pop(seq, None)

    def _remember(self, applied: list[Applied]) -> None:
        for change in applied:
            self._applied[change.seq] = change
        while len(self._applied) > _REMEMBERED:
            self._applied.popitem(last=False)


def created_by(holder: ModelHolder, seq: int, existed: bool) -> bool:
    """Whether upsert ``seq`` added a new article; ``existed`` (the id was served before the write was
    logged) answers when this process did not apply the change itself (a reload replayed it)."""
    outcome = holder.outcome(seq)
    return outcome.created if outcome is not None else not existed
