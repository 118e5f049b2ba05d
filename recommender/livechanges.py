"""The live side of a model: applying logged changes, and reading lists as they stand after them.

:class:`LiveChanges` is a base of :class:`~recommender.Recommender`; it
holds what the in-memory overlay (:mod:`recommender.live`) adds to a loaded
bundle as seen from the model: apply and catch up, the lists and scores as
they stand, what changed since the bundle, and the version of one list.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from .changelog import Change, ChangeLogLike
from .live import Applied, LiveOverlay

if TYPE_CHECKING:
    from .recommend import Recommender


class LiveChanges:
    """Methods of :class:`~recommender.Recommender` about live changes (attributes set by its constructor)."""

    live: LiveOverlay | None
    log_id: str
    log_seq: int
    bundle_seq: int
    base_version: str
    ids: list[str]
    index_of: dict[str, int]
    neighbours: np.ndarray
    neighbour_scores: np.ndarray
    candidate_floor: np.ndarray

    @property
    def version(self) -> str:
        """The bundle's version, with ``+SEQ`` once changes past the bundle's are applied."""
        return self.base_version if self.log_seq == self.bundle_seq else f"{self.base_version}+{self.log_seq}"

    def apply(self, changes: Iterable[Change]) -> list[Applied]:
        """Apply logged changes in order (those at or before :attr:`log_seq` are skipped).

        An upsert folds the article in (its own box, and the boxes it now
        enters); a delete takes the article out of every list at once. Not to
        be called while another thread queries this model.
        """
        if self.live is None:
            self.live = LiveOverlay(cast("Recommender", self))
        return self.live.apply(changes)

    def catch_up(self, log: ChangeLogLike) -> list[Applied]:
        """Apply every change of ``log`` past :attr:`log_seq`."""
        if not self.log_id:
            self.log_id = log.log_id()
        return self.apply(log.since(self.log_seq))

    def drift(self) -> dict[str, Any]:
        """What changed since the bundle was built: articles added, edited, deleted; unknown-token share."""
        counts = self.live.drift() if self.live is not None else LiveOverlay.no_drift()
        return {**counts, "log_seq": self.log_seq, "base_version": self.base_version}

    def kth_scores(self, rows: np.ndarray) -> np.ndarray:
        """The k-th score of each row's precomputed list (-inf where the list is not full)."""
        if self.live is not None:
            return self.live.kth_scores(rows)
        k = self.neighbours.shape[1]
        return np.where(self.neighbours[rows, k - 1] >= 0, self.neighbour_scores[rows, k - 1], -np.inf)

    def candidate_floors_all(self, size: int) -> np.ndarray:
        """The lexical score of each row's last training candidate (0 where it had fewer), for rows 0..size-1."""
        floors = self.live.floor.view if self.live is not None else self.candidate_floor
        return floors[:size]

    def box(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """The precomputed list of ``row``: rows and scores (float64), best first, without padding."""
        if self.live is not None:
            return self.live.box(row)
        rows = np.asarray(self.neighbours[row])
        rows = rows[rows >= 0]
        return rows, np.asarray(self.neighbour_scores[row, : rows.size], dtype=np.float64)

    def list_version(self, article_id: str) -> str:
        """What the precomputed list of ``article_id`` depends on: the bundle, plus the last write that changed it.

        Writes elsewhere leave it as it was, so a cached answer built from that
        list alone stays right (see :attr:`RelatedResult.searched`). Unknown
        ids get the model's version.
        """
        row = self.index_of.get(article_id)
        if self.live is None or row is None:
            return self.version
        return f"{self.base_version}~{self.live.epoch}~{int(self.live.touched.view[row])}"

    def rows(self) -> np.ndarray:
        """The rows of the articles served, in row order (trained ones first, then those written live)."""
        if self.live is None or not self.live.dead:
            return np.arange(len(self.ids))
        alive = np.ones(len(self.ids), dtype=bool)
        alive[self.live.dead_rows] = False
        return np.flatnonzero(alive)
