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
    rows = rec.rows()
    if rec.live is None:
        neighbours = np.asarray(rec.neighbours)
        counts = (neighbours >= 0).sum(axis=1)
        best = np.where(counts > 0, np.asarray(rec.neighbour_scores)[:, 0], 0.0)
    else:  # the lists as they stand, without the articles deleted since
        dead = rec.live.dead
        counts = np.zeros(len(rec.ids), dtype=np.int64)
        best = np.zeros(len(rec.ids))
        for row in rows.tolist():
            items, scores = rec.box(row)
            kept = [at for at, item in enumerate(items.tolist()) if item not in dead]
            counts[row] = len(kept)
            best[row] = scores[kept[0]] if kept else 0.0
    weak = rows[(counts[rows] < min_items) | (best[rows] < min_score)]
    order = weak[np.lexsort((np.asarray(rec.tie_key)[weak], best[weak], counts[weak]))]
    return [
        Orphan(rec.ids[i], str(rec.metadata(i).get("title") or ""), int(counts[i]), round(float(best[i]), 6))
        for i in order
    ]
