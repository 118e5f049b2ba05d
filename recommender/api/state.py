"""The model the service answers from, swapped atomically on reload."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from ..errors import BundleError
from ..recommend import Recommender

log = logging.getLogger("recommender.api")


class ModelHolder:
    """Holds the current :class:`Recommender`.

    A request reads ``holder.current`` once and uses that object to the end,
    so a reload (which builds and verifies the new model completely before
    one assignment replaces the reference) never mixes two models in one
    answer. A bundle that fails verification leaves the old model serving.
    """

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir
        self.current: Recommender | None = None
        self.last_error: str | None = None
        self._lock = threading.Lock()

    def load(self) -> Recommender:
        """Load the current bundle from disk and swap it in; BundleError if it is bad."""
        with self._lock:
            try:
                rec = Recommender.load(self.models_dir)
            except BundleError as exc:
                self.last_error = str(exc)
                log.error("model not loaded: %s", exc)
                raise
            self.current = rec
            self.last_error = None
            log.info("serving model %s (%d articles)", rec.version, len(rec))
            return rec
