"""TF-IDF over title and body, as a scikit-learn style estimator.

The title's term counts are multiplied by ``title_weight`` and added to the
body's; then sublinear tf (1 + log tf), smooth idf as in scikit-learn, and L2
normalisation, so that the cosine of two articles is the dot product of their
rows. Fitting tokenises the corpus in parallel chunks (the tokeniser is pure
Python and single-threaded) and merges the chunks' vocabularies.
"""

from __future__ import annotations

import itertools
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
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

    @classmethod
    def from_fitted(
        cls, params: dict[str, Any], terms: list[str], idf: np.ndarray, stop_words: frozenset[str]
    ) -> TfidfModel:
        """A fitted model rebuilt from its saved parts (constructor parameters, vocabulary, idf, stop words).

        Raises InvalidInputError when a parameter breaks its rule.
        """
        names = ("title_weight", "min_df", "max_df", "stop_words", "sublinear_tf", "max_features", "token_pattern")
        try:
            model = cls(**{n: params[n] for n in names}, ngram_range=tuple(params["ngram_range"]))
            model._validate()
            re.compile(model.token_pattern)
        except (KeyError, TypeError, ValueError, re.error) as exc:
            raise InvalidInputError(f"vectoriser parameters are invalid: {exc}") from None
        if len(terms) != len(idf):
            raise InvalidInputError(f"vocabulary has {len(terms)} terms but {len(idf)} idf weights")
        model.stop_words_ = stop_words
        model.terms_ = terms
        model.vocabulary_ = {t: i for i, t in enumerate(terms)}
        model.idf_ = np.asarray(idf, dtype=np.float64)
        return model

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

    def _ngrams(self) -> tuple[int, int]:
        low, high = self.ngram_range
        return int(low), int(high)

    def build_analyzer(self) -> Callable[[str], list[str]]:
        """The callable that turns a text into its terms (lowercased, stop words out).

        After ``fit`` this is a lean re-implementation of scikit-learn's word
        analyzer (same terms, tested against it) that runs without importing
        scikit-learn and in about half the time.
        """
        if not hasattr(self, "stop_words_"):
            return self._counter().build_analyzer()  # type: ignore[no-any-return]
        return _LeanAnalyzer(self.token_pattern, self.stop_words_, self._ngrams())

    def fit(self, titles: Sequence[str], bodies: Sequence[str]) -> TfidfModel:
        """Learn vocabulary and idf from the corpus and keep its matrix in ``matrix_``."""
        self._validate()
        if len(titles) != len(bodies):
            raise InvalidInputError(f"titles and bodies must have the same length, got {len(titles)} and {len(bodies)}")
        n_docs = len(titles)
        if n_docs == 0:
            raise InvalidInputError("cannot fit on an empty corpus")
        self.stop_words_ = _stop_words(self.stop_words)
        terms, title_counts, body_counts = self._count(titles, bodies)
        counts = sp.csr_matrix(title_counts * np.float32(self.title_weight) + body_counts)
        counts.sum_duplicates()
        counts.eliminate_zeros()
        df = np.bincount(counts.indices, minlength=len(terms))
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
        self.matrix_ = self._weight(_select_columns(counts, columns))
        return self

    def _count(self, titles: Sequence[str], bodies: Sequence[str]) -> tuple[list[str], sp.csr_matrix, sp.csr_matrix]:
        # The lean analyzer (same terms as scikit-learn's) counts in worker
        # processes that never import scikit-learn: its import alone costs a
        # second per process.
        analyzer = _LeanAnalyzer(self.token_pattern, self.stop_words_, self._ngrams())
        n_docs = len(titles)
        n_jobs = _effective_jobs(self.n_jobs)
        if n_jobs == 1 or n_docs < _PARALLEL_MIN_DOCS:
            return _count_chunk(analyzer, titles, bodies)
        # Chunks of about equal text (the work is per character), two per
        # worker so that one slow chunk does not leave a core idle for long.
        sizes = np.fromiter((len(t) + len(b) for t, b in zip(titles, bodies, strict=True)), np.int64, n_docs)
        ends = np.searchsorted(np.cumsum(sizes), np.linspace(0, sizes.sum(), n_jobs * 2 + 1)[1:-1])
        bounds = [0, *sorted(set(np.minimum(ends + 1, n_docs).tolist()) - {0, n_docs}), n_docs]
        parts = _count_in_processes(analyzer, titles, bodies, bounds, n_jobs)
        return _merge_counts(parts)

    def _weight(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Sublinear tf times idf, rows scaled to unit length (on the CSR arrays directly)."""
        counts = sp.csr_matrix(counts, dtype=np.float64)
        counts.sum_duplicates()
        counts.eliminate_zeros()
        data = counts.data
        if self.sublinear_tf:
            np.log(data, out=data)
            data += 1.0
        data *= self.idf_[counts.indices]
        row_of = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
        norms = np.sqrt(np.bincount(row_of, data * data, minlength=counts.shape[0]))
        norms[norms == 0] = 1.0
        data /= norms[row_of]
        result = sp.csr_matrix((data.astype(np.float32), counts.indices, counts.indptr), shape=counts.shape)
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


def _stop_words(name: str | None) -> frozenset[str]:
    """scikit-learn's English stop-word list, read without importing scikit-learn.

    Importing the package runs its whole ``__init__`` (about a second); the
    list lives in a plain module that can be loaded on its own.
    """
    if name is None:
        return frozenset()
    if name != "english":
        raise InvalidInputError(f"stop_words must be 'english' or None, got {name!r}")
    import importlib.util
    import sys

    module = sys.modules.get("sklearn.feature_extraction._stop_words")
    if module is None:
        package = importlib.util.find_spec("sklearn")
        locations = list(package.submodule_search_locations or []) if package else []
        path = Path(locations[0]) / "feature_extraction" / "_stop_words.py" if locations else None
        if path is None or not path.is_file():  # pragma: no cover - a differently laid out scikit-learn
            from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

            return frozenset(ENGLISH_STOP_WORDS)
        spec = importlib.util.spec_from_file_location("_recommender_sklearn_stop_words", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return frozenset(module.ENGLISH_STOP_WORDS)


class _LeanAnalyzer:
    """Lowercase, find tokens, drop stop words, add n-grams: scikit-learn's word analyzer."""

    def __init__(self, token_pattern: str, stop_words: frozenset[str], ngram_range: tuple[int, int]) -> None:
        # The default pattern's word boundaries are implied: findall takes
        # maximal runs of word characters either way, and the scan is faster
        # without the two boundary tests per position.
        pattern = r"\w\w+" if token_pattern == TOKEN_PATTERN else token_pattern
        self.findall = re.compile(pattern).findall
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


# Texts handed to forked counting workers: a child process inherits them
# instead of receiving a pickled copy.
_FORK_INPUT: tuple[Any, Sequence[str], Sequence[str]] | None = None


def _count_forked(start: int, stop: int) -> tuple[list[str], sp.csr_matrix, sp.csr_matrix]:
    assert _FORK_INPUT is not None
    analyzer, titles, bodies = _FORK_INPUT
    return _count_chunk(analyzer, titles[start:stop], bodies[start:stop])


def _count_in_processes(
    analyzer: Any, titles: Sequence[str], bodies: Sequence[str], bounds: list[int], n_jobs: int
) -> list[tuple[list[str], sp.csr_matrix, sp.csr_matrix]]:
    """Count chunks in worker processes: forked where the platform can (no start-up, no copy), else joblib."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    global _FORK_INPUT
    ranges = list(itertools.pairwise(bounds))
    if "fork" not in multiprocessing.get_all_start_methods():  # pragma: no cover - not on Linux
        return Parallel(n_jobs=n_jobs)(delayed(_count_chunk)(analyzer, titles[a:b], bodies[a:b]) for a, b in ranges)
    _FORK_INPUT = (analyzer, titles, bodies)
    try:
        with ProcessPoolExecutor(
            n_jobs,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            return list(pool.map(_count_forked, *zip(*ranges, strict=True)))
    finally:
        _FORK_INPUT = None


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    """Initializer of a forked counting worker: the worker ends when the training process dies.

    An idle worker waits on the task queue, whose pipe its siblings also hold
    open: after a SIGKILL of the training process, no end-of-file ever comes
    and the workers (about 130 MB each) would wait forever. On Linux the
    kernel kills the worker when its parent goes (PR_SET_PDEATHSIG; the
    "parent" is the thread that forked, which here is the one blocked in
    ``pool.map`` until the pool is shut down); elsewhere a thread watches the
    parent pid.
    """
    import signal
    import sys

    watched = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            watched = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
            watched = False
    if not watched:  # pragma: no cover - not on Linux
        import threading

        threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    # The parent may have died between the fork and prctl: the signal would never come.
    if os.getppid() != parent:
        os._exit(1)


def _exit_when_orphaned(parent: int) -> None:  # pragma: no cover - used where prctl is missing
    import time

    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _count_chunk(
    analyzer: Callable[[str], list[str]], titles: Sequence[str], bodies: Sequence[str]
) -> tuple[list[str], sp.csr_matrix, sp.csr_matrix]:
    """Term counts of one chunk, titles and bodies in one shared local vocabulary (sorted)."""
    vocabulary: dict[str, int] = {}
    matrices: list[tuple[np.ndarray, np.ndarray, list[int]]] = []
    for texts in (titles, bodies):
        indptr = [0]
        indices: list[int] = []
        values: list[int] = []
        for text in texts:
            if text:
                # Counter counts in C; the vocabulary is then touched once per distinct term.
                for term, count in Counter(analyzer(text)).items():
                    indices.append(vocabulary.setdefault(term, len(vocabulary)))
                    values.append(count)
            indptr.append(len(indices))
        matrices.append((np.asarray(values, dtype=np.float32), np.asarray(indices, dtype=np.int64), indptr))
    terms = sorted(vocabulary)
    order = np.empty(len(terms), dtype=np.int64)
    order[[vocabulary[t] for t in terms]] = np.arange(len(terms))
    out = []
    for counts, columns, row_starts in matrices:
        m = sp.csr_matrix(
            (counts, order[columns] if columns.size else columns, row_starts), shape=(len(row_starts) - 1, len(terms))
        )
        m.sort_indices()
        out.append(m)
    return terms, out[0], out[1]


def _select_columns(matrix: sp.csr_matrix, columns: np.ndarray) -> sp.csr_matrix:
    """The given (sorted) columns of a CSR matrix, renumbered 0..len-1, without scipy's fancy indexing."""
    mapping = np.full(matrix.shape[1], -1, dtype=np.int64)
    mapping[columns] = np.arange(columns.size)
    new_columns = mapping[matrix.indices]
    kept = new_columns >= 0
    row_of = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    indptr = np.concatenate(([0], np.cumsum(np.bincount(row_of[kept], minlength=matrix.shape[0]))))
    return sp.csr_matrix((matrix.data[kept], new_columns[kept], indptr), shape=(matrix.shape[0], columns.size))


def _merge_counts(
    parts: list[tuple[list[str], sp.csr_matrix, sp.csr_matrix]],
) -> tuple[list[str], sp.csr_matrix, sp.csr_matrix]:
    """Stack chunk counts in one sorted vocabulary."""
    vocabulary = sorted(set().union(*(terms for terms, _, _ in parts)))
    position = {t: i for i, t in enumerate(vocabulary)}
    titles: list[sp.csr_matrix] = []
    bodies: list[sp.csr_matrix] = []
    for terms, title_counts, body_counts in parts:
        remap = np.array([position[t] for t in terms], dtype=np.int64)
        for source, target in ((title_counts, titles), (body_counts, bodies)):
            target.append(
                sp.csr_matrix(
                    (source.data, remap[source.indices], source.indptr), shape=(source.shape[0], len(vocabulary))
                )
            )
    return vocabulary, sp.vstack(titles, format="csr"), sp.vstack(bodies, format="csr")
