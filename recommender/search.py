"""Free text answered on demand: exact top k of a query vector from an inverted index.

Only the posting lists of the query's terms are read (a pre-transposed,
column-major copy of the corpus matrix), never a scan of every article.
"""

from __future__ import annotations

import threading

import numpy as np
import scipy.sparse as sp

from .kernels import add_sparse_into, kth_lower_bound

# A query's candidates are cut at a bound taken from this many group maxima.
_ROW_GROUPS = 512


class SearchIndex:
    """On-demand exact top-k for a query vector over a column-major matrix.

    ``postings`` is the corpus matrix transposed to CSR (one row per term,
    holding the documents that use it and their weights), so a query touches
    only the posting lists of its own terms.
    """

    def __init__(self, postings: sp.csr_matrix, tie_key: np.ndarray) -> None:
        self.postings = postings
        self.tie_key = tie_key
        self.n_documents = postings.shape[1]
        self._local = threading.local()

    @classmethod
    def from_matrix(cls, matrix: sp.csr_matrix, tie_key: np.ndarray) -> SearchIndex:
        """Build from the row-major corpus matrix."""
        postings = sp.csr_matrix(matrix.T, dtype=np.float32)
        postings.sort_indices()
        return cls(postings, tie_key)

    def scores(self, columns: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Cosine of the query with every document (dense float64, length N)."""
        indptr, indices, data = self.postings.indptr, self.postings.indices, self.postings.data
        begins, ends = indptr[columns], indptr[columns + 1]
        total = int((ends - begins).sum())
        out = np.zeros((1, self.n_documents))
        if total == 0:
            return out[0]
        # The touched postings are copied run by run (one memcpy and one
        # multiply per query term) into per-thread buffers reused across
        # queries: fresh multi-MB temporaries cost page faults on every call,
        # which took more time than the arithmetic.
        buffers = getattr(self._local, "buffers", None)
        if buffers is None or buffers[0].size < total:
            size = total + total // 4
            buffers = self._local.buffers = (np.empty(size, dtype=indices.dtype), np.empty(size))
        docs, contrib = buffers[0][:total], buffers[1][:total]
        low = 0
        for begin, end, weight in zip(begins.tolist(), ends.tolist(), weights.tolist(), strict=True):
            high = low + end - begin
            docs[low:high] = indices[begin:end]
            # float32 x float32 is exact in float64; the sum runs in float64.
            np.multiply(data[begin:end], weight, out=contrib[low:high], dtype=np.float64)
            low = high
        add_sparse_into(out, np.array([0, total], dtype=docs.dtype), docs, contrib)
        return out[0]

    def query(
        self,
        columns: np.ndarray,
        weights: np.ndarray,
        k: int,
        *,
        min_similarity: float = 0.0,
        exclude: np.ndarray | None = None,
        allowed: np.ndarray | None = None,
        scores: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top k (document indices, scores) for one sparse query vector.

        ``exclude`` lists document indices never to return; ``allowed`` (a
        boolean mask over documents) restricts the result to a subset.
        Only documents scoring above ``min_similarity`` (and above 0) count.
        ``scores`` passes the query's scores from :meth:`scores` when the
        caller already has them (they are not modified).
        """
        if columns.size == 0 or k <= 0:
            return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float64)
        scores = self.scores(columns, weights) if scores is None else scores.copy()
        floor = max(min_similarity, 0.0)
        if exclude is not None and exclude.size:
            scores[exclude] = -np.inf
        if allowed is not None:
            scores[~allowed] = -np.inf
        # Only values reaching a lower bound of the k-th best can be in the
        # answer: one streaming pass instead of a selection over every document.
        cut = kth_lower_bound(scores[None, :], k, 1, _ROW_GROUPS)[0]
        candidates = np.flatnonzero(scores >= cut) if cut > floor else np.flatnonzero(scores > floor)
        candidates = candidates[scores[candidates] > floor]
        if candidates.size == 0:
            return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float64)
        if candidates.size > k:
            cand_scores = scores[candidates]
            # Keep everything tied with the k-th score so that the tie key decides.
            kth = np.partition(cand_scores, cand_scores.size - k)[cand_scores.size - k]
            candidates = candidates[cand_scores >= kth]
        order = np.lexsort((self.tie_key[candidates], -scores[candidates]))[:k]
        picked = candidates[order]
        return picked.astype(np.int32), scores[picked]
