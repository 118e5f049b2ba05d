"""The model the service answers from, swapped atomically on reload."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from ..bundle import CURRENT
from ..errors import BundleError
from ..recommend import Recommender

log = logging.getLogger("recommender.api")

_NEVER = object()


class ModelHolder:
    """Holds the current :class:`Recommender`.

    A request reads ``holder.current`` once and uses that object to the end,
    so a reload (which builds and verifies the new model completely before
    one assignment replaces the reference) never mixes two models in one
    answer. A bundle that fails verification leaves the old model serving.

    ``link_changed`` tells whether ``models/current`` points somewhere else
    than at the last load (successful or not): every worker polls it, so all
    of them follow a new link, and a refused bundle is not tried again until
    the link moves.
    """

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir
        self.current: Recommender | None = None
        self.loaded_at: float | None = None
        self._loaded_link: object = _NEVER
        self._lock = threading.Lock()

    def link(self) -> str | None:
        """Where ``models/current`` points now (None when there is no link)."""
        try:
            return os.readlink(Path(self.models_dir) / CURRENT)
        except OSError:
            return None

    def link_changed(self) -> bool:
        """True when ``models/current`` moved since the last load attempt."""
        return self.link() != self._loaded_link

    def load(self) -> Recommender:
        """Load the current bundle from disk and swap it in; BundleError if it is bad."""
        with self._lock:
            self._loaded_link = self.link()
            try:
                rec = Recommender.load(self.models_dir)
            except BundleError as exc:
                log.error("model not loaded: %s", exc)
                raise
            self.current = rec
            self.loaded_at = time.time()
            log.info("serving model %s (%d articles)", rec.version, len(rec))
            return rec
