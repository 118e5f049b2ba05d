"""The semantic view: a low-rank (LSA) picture of the corpus blended with TF-IDF.

TF-IDF cosine rewards shared words; two articles on the same story told in
different words score low. A truncated SVD of the TF-IDF matrix (fitted at
training time) maps every article to a short dense vector where such
articles are close. Candidates still come from the exact TF-IDF neighbours,
so an item must share words with the source to be listed at all; the final
score is ``(1 - weight) * lexical + weight * semantic``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .index import Neighbours


def fit_semantic(matrix: sp.csr_matrix, n_components: int, *, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fit LSA on the TF-IDF matrix: (components (d, V), row vectors (N, d) L2-normalised), float32."""
    from sklearn.decomposition import TruncatedSVD

    d = int(min(n_components, matrix.shape[0] - 1, matrix.shape[1] - 1))
    if d < 2:
        return np.zeros((0, matrix.shape[1]), np.float32), np.zeros((matrix.shape[0], 0), np.float32)
    svd = TruncatedSVD(n_components=d, algorithm="randomized", n_iter=4, random_state=random_state)
    vectors = svd.fit_transform(matrix.astype(np.float32))
    return svd.components_.astype(np.float32), normalize_rows(vectors).astype(np.float32)


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms


@dataclass
class SemanticView:
    """LSA components and corpus vectors, and the weight of the semantic score."""

    components: np.ndarray
    vectors: np.ndarray
    weight: float

    @property
    def active(self) -> bool:
        return self.weight > 0 and self.vectors.shape[1] > 0

    def project(self, columns: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """A sparse TF-IDF vector in the LSA space, unit length."""
        if columns.size == 0:
            return np.zeros(self.vectors.shape[1], dtype=np.float32)
        z = weights.astype(np.float32) @ self.components[:, columns].T
        norm = float(np.linalg.norm(z))
        return z / norm if norm else z

    def blend(self, lexical: np.ndarray, source: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Final scores of candidates from their lexical scores and LSA cosine with ``source``."""
        if not self.active or candidates.size == 0:
            return lexical
        semantic = np.asarray(self.vectors[candidates]) @ source
        return (1.0 - self.weight) * lexical + self.weight * semantic


def rerank_neighbours(
    candidates: Neighbours, vectors: np.ndarray, weight: float, k: int, tie_key: np.ndarray
) -> tuple[Neighbours, np.ndarray]:
    """Re-score every article's lexical candidates with the blend; keep the best k.

    Returns the new lists and, aligned with them, the lexical scores (for
    near-duplicate detection and explanations).
    """
    idx, lex = candidates.indices, candidates.scores.astype(np.float64)
    valid = idx >= 0
    safe = np.where(valid, idx, 0)
    final = lex.copy()
    if weight > 0 and vectors.shape[1] > 0:
        # Row chunks keep the gathered (rows, candidates, d) block small.
        step = max(1, (64 << 20) // max(1, idx.shape[1] * vectors.shape[1] * 4))
        for start in range(0, idx.shape[0], step):
            rows = slice(start, start + step)
            semantic = np.einsum("nd,ncd->nc", vectors[rows], vectors[safe[rows]])
            final[rows] = (1.0 - weight) * lex[rows] + weight * semantic
    final = np.where(valid, final, -np.inf)
    order = np.lexsort((tie_key[safe], -final), axis=1)[:, :k]
    new_idx = np.take_along_axis(idx, order, axis=1)
    new_scores = np.take_along_axis(final, order, axis=1)
    new_lex = np.take_along_axis(lex, order, axis=1)
    empty = new_idx < 0
    new_scores[empty] = 0.0
    new_lex[empty] = 0.0
    return Neighbours(new_idx.astype(np.int32), new_scores.astype(np.float32)), new_lex.astype(np.float32)
