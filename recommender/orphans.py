"""Articles whose "You May Also Like" box would be empty or weak."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .recommend import Recommender


@dataclass(frozen=True)
class Orphan:
    """An article with too few related items, or only weakly related ones."""

    id: str
    title: str
    items: int
    best_score: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def find_orphans(rec: Recommender, *, min_score: float = 0.1, min_items: int = 3) -> list[Orphan]:
    """Weakest first: articles with fewer than ``min_items`` items or a best score below ``min_score``.

    Reads the precomputed lists only, so it costs one pass over the bundle.
    """
    neighbours = np.asarray(rec.neighbours)
    scores = np.asarray(rec.neighbour_scores)
    counts = (neighbours >= 0).sum(axis=1)
    best = np.where(counts > 0, scores[:, 0], 0.0)
    weak = np.flatnonzero((counts < min_items) | (best < min_score))
    order = weak[np.lexsort((np.asarray(rec.tie_key)[weak], best[weak], counts[weak]))]
    return [
        Orphan(rec.ids[i], str(rec.metadata(i).get("title") or ""), int(counts[i]), round(float(best[i]), 6))
        for i in order
    ]
