"""TF-IDF over title and body, as a scikit-learn style estimator.

The title's term counts are multiplied by ``title_weight`` and added to the
body's; then sublinear tf (1 + log tf), smooth idf as in scikit-learn, and L2
normalisation, so that the cosine of two articles is the dot product of their
rows. Fitting tokenises the corpus in parallel chunks (the tokeniser is pure
Python and single-threaded) and merges the chunks' vocabularies.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed

from .errors import InvalidInputError, NotFittedError

TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_PARALLEL_MIN_DOCS = 4000


class TfidfModel:
    """Title-weighted TF-IDF vectoriser.

    Parameters are stored unchanged by ``__init__``; ``fit`` validates them.
    Fitted attributes: ``vocabulary_`` (term -> column), ``terms_`` (column ->
    term), ``idf_`` (float64 per column), ``matrix_`` (L2-normalised CSR of
    the fitted corpus, float32).
    """

    def __init__(
        self,
        *,
        title_weight: float = 2.0,
        min_df: int = 3,
        max_df: float = 0.5,
        ngram_range: tuple[int, int] = (1, 1),
        stop_words: str | None = "english",
        sublinear_tf: bool = True,
        max_features: int | None = None,
        token_pattern: str = TOKEN_PATTERN,
        n_jobs: int | None = None,
    ) -> None:
        self.title_weight = title_weight
        self.min_df = min_df
        self.max_df = max_df
        self.ngram_range = ngram_range
        self.stop_words = stop_words
        self.sublinear_tf = sublinear_tf
        self.max_features = max_features
        self.token_pattern = token_pattern
        self.n_jobs = n_jobs

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, as scikit-learn estimators report them."""
        return {
            "title_weight": self.title_weight,
            "min_df": self.min_df,
            "max_df": self.max_df,
            "ngram_range": list(self.ngram_range),
            "stop_words": self.stop_words,
            "sublinear_tf": self.sublinear_tf,
            "max_features": self.max_features,
            "token_pattern": self.token_pattern,
        }

    def _validate(self) -> None:
        if not (isinstance(self.title_weight, (int, float)) and 0 <= self.title_weight <= 100):
            raise InvalidInputError(f"title_weight must be a number in [0, 100], got {self.title_weight!r}")
        if isinstance(self.min_df, bool) or not isinstance(self.min_df, int) or self.min_df < 1:
            raise InvalidInputError(f"min_df must be an integer >= 1, got {self.min_df!r}")
        if not (isinstance(self.max_df, (int, float)) and 0 < self.max_df <= 1):
            raise InvalidInputError(f"max_df must be a fraction in (0, 1], got {self.max_df!r}")
        lo, hi = self.ngram_range
        if not (1 <= lo <= hi <= 3):
            raise InvalidInputError(f"ngram_range must satisfy 1 <= min <= max <= 3, got {self.ngram_range!r}")
        if self.max_features is not None and self.max_features < 1:
            raise InvalidInputError(f"max_features must be >= 1, got {self.max_features!r}")

    def _counter(self, vocabulary: dict[str, int] | None = None) -> Any:
        # Imported here: serving a fitted model never needs scikit-learn's
        # vectoriser, and importing it costs a second of start-up.
        from sklearn.feature_extraction.text import CountVectorizer

        return CountVectorizer(
            stop_words=self.stop_words,
            ngram_range=tuple(self.ngram_range),
            token_pattern=self.token_pattern,
            vocabulary=vocabulary,
            dtype=np.float32,
        )

    def build_analyzer(self) -> Callable[[str], list[str]]:
        """The callable that turns a text into its terms (lowercased, stop words out).

        After ``fit`` this is a lean re-implementation of scikit-learn's word
        analyzer (same terms, tested against it) that runs without importing
        scikit-learn and in about half the time.
        """
        if not hasattr(self, "stop_words_"):
            return self._counter().build_analyzer()  # type: ignore[no-any-return]
        return _LeanAnalyzer(self.token_pattern, self.stop_words_, tuple(self.ngram_range))

    def fit(self, titles: Sequence[str], bodies: Sequence[str]) -> TfidfModel:
        """Learn vocabulary and idf from the corpus and keep its matrix in ``matrix_``."""
        self._validate()
        if len(titles) != len(bodies):
            raise InvalidInputError(f"titles and bodies must have the same length, got {len(titles)} and {len(bodies)}")
        n_docs = len(titles)
        if n_docs == 0:
            raise InvalidInputError("cannot fit on an empty corpus")
        counter = self._counter()
        self.stop_words_ = frozenset(counter.get_stop_words() or ())
        terms, title_counts, body_counts = self._count(titles, bodies)
        counts = (title_counts * np.float32(self.title_weight) + body_counts).tocsc()
        df = np.diff((counts > 0).astype(np.int8).tocsc().indptr)
        # On a corpus of a few dozen articles a term in 3 of them is already
        # telling: min_df is capped at one article in ten, so that a small
        # corpus keeps a vocabulary.
        self.min_df_ = min(self.min_df, max(1, n_docs // 10))
        keep = df >= self.min_df_
        if n_docs > 1 or self.max_df < 1:
            keep &= df <= self.max_df * n_docs
        if self.max_features is not None and keep.sum() > self.max_features:
            totals = np.asarray(counts.sum(axis=0)).ravel()
            ranked = np.flatnonzero(keep)[np.argsort(-totals[keep], kind="stable")]
            keep = np.zeros_like(keep)
            keep[ranked[: self.max_features]] = True
        columns = np.flatnonzero(keep)
        self.terms_ = [terms[i] for i in columns]
        self.vocabulary_ = {t: i for i, t in enumerate(self.terms_)}
        self.idf_ = np.log((1.0 + n_docs) / (1.0 + df[columns])) + 1.0
        self.n_documents_ = n_docs
        self.matrix_ = self._weight(counts[:, columns].tocsr())
        return self

    def _count(self, titles: Sequence[str], bodies: Sequence[str]) -> tuple[list[str], sp.csr_matrix, sp.csr_matrix]:
        n_docs = len(titles)
        n_jobs = _effective_jobs(self.n_jobs)
        if n_jobs == 1 or n_docs < _PARALLEL_MIN_DOCS:
            return _count_chunk(self._counter(), titles, bodies)
        bounds = np.linspace(0, n_docs, n_jobs * 2 + 1).astype(int)
        parts = Parallel(n_jobs=n_jobs)(
            delayed(_count_chunk)(self._counter(), titles[a:b], bodies[a:b]) for a, b in itertools.pairwise(bounds)
        )
        return _merge_counts(parts)

    def _weight(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        counts = counts.astype(np.float64)
        counts.sum_duplicates()
        counts.eliminate_zeros()
        if self.sublinear_tf:
            np.log(counts.data, out=counts.data)
            counts.data += 1.0
        counts = counts.multiply(self.idf_[np.newaxis, :]).tocsr()
        norms = np.sqrt(np.asarray(counts.multiply(counts).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        counts = sp.diags(1.0 / norms) @ counts
        result = sp.csr_matrix(counts, dtype=np.float32)
        result.sort_indices()
        return result

    def _check_fitted(self) -> None:
        if not hasattr(self, "idf_"):
            raise NotFittedError("this TfidfModel is not fitted yet: call fit first")

    def transform(self, titles: Sequence[str], bodies: Sequence[str]) -> sp.csr_matrix:
        """L2-normalised TF-IDF rows for texts, in the fitted vocabulary."""
        self._check_fitted()
        counter = self._counter(self.vocabulary_)
        counts = counter.transform(list(titles)) * np.float32(self.title_weight) + counter.transform(list(bodies))
        return self._weight(sp.csr_matrix(counts))

    def transform_one(self, title: str, body: str) -> tuple[np.ndarray, np.ndarray]:
        """One text as a sparse vector: sorted column indices and L2-normalised weights.

        Same numbers as :meth:`transform`, without building a matrix; an empty
        or all-unknown text gives two empty arrays.
        """
        self._check_fitted()
        analyzer = getattr(self, "_analyzer", None)
        if analyzer is None:
            analyzer = self._analyzer = self.build_analyzer()
        vocabulary = self.vocabulary_
        counts: dict[int, float] = {}
        for text, weight in ((title, float(self.title_weight)), (body, 1.0)):
            if not text or weight == 0.0:
                continue
            for term in analyzer(text):
                column = vocabulary.get(term)
                if column is not None:
                    counts[column] = counts.get(column, 0.0) + weight
        if not counts:
            return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32)
        columns = np.fromiter(counts.keys(), dtype=np.int32, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        order = np.argsort(columns)
        columns, tf = columns[order], tf[order]
        if self.sublinear_tf:
            tf = 1.0 + np.log(tf)
        weights = tf * self.idf_[columns]
        weights /= np.sqrt(np.dot(weights, weights))
        return columns, weights.astype(np.float32)

    def __getstate__(self) -> dict[str, Any]:
        # The corpus matrix and the cached analyzer are not part of the saved
        # vectoriser: the bundle stores the matrix as plain arrays.
        state = dict(self.__dict__)
        state.pop("matrix_", None)
        state.pop("_analyzer", None)
        return state


class _LeanAnalyzer:
    """Lowercase, find tokens, drop stop words, add n-grams: scikit-learn's word analyzer."""

    def __init__(self, token_pattern: str, stop_words: frozenset[str], ngram_range: tuple[int, int]) -> None:
        self.findall = re.compile(token_pattern).findall
        self.stop_words = stop_words
        self.min_n, self.max_n = ngram_range

    def __call__(self, text: str) -> list[str]:
        stop = self.stop_words
        tokens = [t for t in self.findall(text.lower()) if t not in stop]
        if self.max_n == 1:
            return tokens
        grams = list(tokens) if self.min_n == 1 else []
        for n in range(max(self.min_n, 2), min(self.max_n, len(tokens)) + 1):
            grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        return grams


def _effective_jobs(n_jobs: int | None) -> int:
    import os

    cores = os.cpu_count() or 1
    if n_jobs is None or n_jobs == -1:
        return cores
    return max(1, min(int(n_jobs), cores))


def _count_chunk(
    counter: Any, titles: Sequence[str], bodies: Sequence[str]
) -> tuple[list[str], sp.csr_matrix, sp.csr_matrix]:
    """Term counts of one chunk, titles and bodies in one shared local vocabulary."""
    both = counter.fit_transform(list(titles) + list(bodies)).tocsr()
    terms = counter.get_feature_names_out().tolist()
    n = len(titles)
    return terms, both[:n], both[n:]


def _merge_counts(
    parts: list[tuple[list[str], sp.csr_matrix, sp.csr_matrix]],
) -> tuple[list[str], sp.csr_matrix, sp.csr_matrix]:
    """Stack chunk counts in one sorted vocabulary."""
    vocabulary = sorted(set().union(*(set(terms) for terms, _, _ in parts)))
    position = {t: i for i, t in enumerate(vocabulary)}
    titles, bodies = [], []
    for terms, title_counts, body_counts in parts:
        remap = np.fromiter((position[t] for t in terms), dtype=np.int64, count=len(terms))
        for source, target in ((title_counts, titles), (body_counts, bodies)):
            coo = source.tocoo()
            target.append(
                sp.csr_matrix((coo.data, (coo.row, remap[coo.col])), shape=(source.shape[0], len(vocabulary)))
            )
    return vocabulary, sp.vstack(titles, format="csr"), sp.vstack(bodies, format="csr")
