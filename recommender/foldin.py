"""Folding a new article into a fitted model without retraining: what the live index computes per upsert.

A new or edited article is vectorised with the model's vocabulary and idf,
projected into the semantic view and augmented with its best lexical
neighbours, exactly as a draft is (:meth:`Recommender.related_to_text`); its
own box is the top k of its lexical candidates re-scored with the blend, as
training re-scores a trained article's. The same scores tell which existing
articles it now beats at their k-th place: for each candidate ``j`` the
blended score ``(1 - w) * tfidf(j, x) + w * augmented(j) . augmented(x)`` is
the score ``j``'s precomputed list would give it, so ``x`` enters ``j``'s box
when that beats the list's last score (or the list is not full).

What stays approximate until the next full build: the idf and the vocabulary
(terms new to the corpus are unknown), the SVD, and the other articles'
augmented vectors (``x`` does not join their neighbourhoods).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .corpus import Article

if TYPE_CHECKING:
    from .recommend import Recommender

_NONE = np.empty(0, dtype=np.int64)


@dataclass(frozen=True)
class FoldIn:
    """What folding one article in computes: its vectors, its own box and the boxes it enters."""

    columns: np.ndarray  # TF-IDF vector: column indices (int32) ...
    weights: np.ndarray  # ... and L2-normalised weights (float32)
    plain: np.ndarray  # LSA projection (float32, unit length; empty without the view)
    semantic: np.ndarray  # augmented semantic vector (float32, unit length; empty without the view)
    language: str
    candidates: np.ndarray  # lexical candidates (rows), best first ...
    lexical: np.ndarray  # ... and their cosines
    floor: float  # the lexical score of its last candidate (0 when it has fewer than the pool)
    norm: float  # the augmented vector's length before it was scaled to unit length
    reach: np.ndarray  # the rows that would have read it among their training candidates ...
    reach_lexical: np.ndarray  # ... and its lexical cosine with each
    box: list[tuple[int, float]]  # (row, score) of its own list, best first
    enters: list[tuple[int, float]]  # (row of an existing article, the score it now has in that article's box)
    known_tokens: int  # tokens of the text in the vocabulary ...
    tokens: int  # ... and all of them


def fold_in(rec: Recommender, article: Article, *, exclude: np.ndarray = _NONE, enters: bool = True) -> FoldIn:
    """The vectors, the own box and the reverse neighbours of ``article`` in ``rec`` (nothing is changed).

    ``exclude`` lists rows that must not appear (the article's own former
    version when it is edited, deleted articles). Without ``enters`` the
    boxes it enters are not worked out (``enters`` is empty).
    """
    language = rec.text_language(f"{article.title}\n{article.body}", article.language)
    columns, weights, known, total = rec.vectorizer.transform_counting(article.title, article.body, language)
    k = int(rec.neighbours.shape[1])
    width = int(rec.semantic.vectors.shape[1])
    empty = np.zeros(width, np.float32)
    if columns.size == 0:
        return FoldIn(
            columns,
            weights,
            empty,
            empty,
            language,
            _NONE,
            np.empty(0),
            0.0,
            1.0,
            _NONE,
            np.empty(0),
            [],
            [],
            known,
            total,
        )
    lexical_all = rec.search.scores(columns, weights)
    plain = rec.semantic.project(columns, weights) if width else empty
    z, norm = (
        rec._query_vector_with_norm(columns, weights, lexical_all, exclude) if rec.semantic.active else (None, 1.0)
    )
    pool = max(k, rec.options.candidates)
    found, lexical = rec.search.query(
        columns, weights, pool, min_similarity=rec.min_similarity, exclude=exclude, scores=lexical_all
    )
    floor = float(lexical[-1]) if found.size >= pool else 0.0
    final = rec.semantic.blend(lexical, z, found) if z is not None else lexical
    ranked, ranked_scores = rec.facts.sort(found, final)
    box = list(zip(ranked[:k].tolist(), ranked_scores[:k].tolist(), strict=True))
    # Reverse neighbours: every article that would have read it among its training candidates
    # (it reaches their last candidate's lexical score), not only its own candidates: an
    # article far down its list can still have it high on its own. Those whose k-th score
    # it beats take it in.
    reach = np.flatnonzero(lexical_all >= rec.candidate_floors_all(lexical_all.size))
    reach = reach[lexical_all[reach] > max(rec.min_similarity, 0.0)]
    if exclude.size:
        reach = np.setdiff1d(reach, exclude, assume_unique=True)
    entering: list[tuple[int, float]] = []
    if enters:  # the live index's neighbourhood join scores them itself
        reach_scores = rec.semantic.blend(lexical_all[reach], z, reach) if z is not None else lexical_all[reach]
        beats = reach_scores > rec.kth_scores(reach)
        entering = list(zip(reach[beats].tolist(), reach_scores[beats].tolist(), strict=True))
    reach_lexical = lexical_all[reach]
    semantic = z if z is not None else (plain if width else empty)
    return FoldIn(
        columns,
        weights,
        plain,
        semantic,
        language,
        found,
        lexical,
        floor,
        norm,
        reach,
        reach_lexical,
        box,
        entering,
        known,
        total,
    )
