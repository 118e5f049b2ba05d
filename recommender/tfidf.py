"""TF-IDF over title and body, as a scikit-learn style estimator, with analysis per language.

The title's term counts are multiplied by ``title_weight`` and added to the
body's; then sublinear tf (1 + log tf), smooth idf as in scikit-learn, and L2
normalisation, so that the cosine of two articles is the dot product of their
rows. Each article is analysed by the analyser of its language
(:mod:`recommender.analysis`); all languages share one vocabulary. Fitting
counts the corpus in parallel chunks (:mod:`recommender.counting`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .analysis import CJK_LANGUAGES, DEFAULT_LANGUAGE, Analyzer, stop_words
from .counting import Counts, count_terms, select_columns
from .errors import InvalidInputError, NotFittedError

TOKEN_PATTERN = r"(?u)\b\w\w+\b"
STOP_WORDS = ("auto", "english", None)
CJK_MODES = ("ngrams", "jieba")


# Counts the terms of (model, languages, titles, bodies) somewhere else than here.
TermCounter = Callable[["TfidfModel", Sequence[str], Sequence[str], Sequence[str]], Counts]


class TfidfModel:
    """Title-weighted TF-IDF vectoriser.

    Parameters are stored unchanged by ``__init__``; ``fit`` validates them.
    ``stop_words="auto"`` (or ``"english"``, its former name) removes each
    language's stop words (scikit-learn's list for English); ``None`` none.
    ``stem`` adds Snowball stemming where a stemmer exists for the language;
    ``cjk`` chooses how Chinese, Japanese and Korean runs are cut.
    Fitted attributes: ``vocabulary_`` (term -> column), ``terms_`` (column ->
    term), ``idf_`` (float64 per column), ``stop_words_`` (language -> stop
    words), ``language_`` (the default language of a text), ``matrix_``
    (L2-normalised CSR of the fitted corpus, float32).
    """

    def __init__(
        self,
        *,
        title_weight: float = 2.0,
        min_df: int = 3,
        max_df: float = 0.5,
        ngram_range: tuple[int, int] = (1, 1),
        stop_words: str | None = "auto",
        sublinear_tf: bool = True,
        max_features: int | None = None,
        token_pattern: str = TOKEN_PATTERN,
        stem: bool = False,
        cjk: str = "ngrams",
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
        self.stem = stem
        self.cjk = cjk
        self.n_jobs = n_jobs

    _PARAMS = (
        "title_weight", "min_df", "max_df", "stop_words", "sublinear_tf",
        "max_features", "token_pattern", "stem", "cjk",
    )  # fmt: skip

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, as scikit-learn estimators report them."""
        return {**{name: getattr(self, name) for name in self._PARAMS}, "ngram_range": list(self.ngram_range)}

    @classmethod
    def from_fitted(
        cls,
        params: dict[str, Any],
        terms: list[str],
        idf: np.ndarray,
        stop_words: dict[str, frozenset[str]],
        language: str = DEFAULT_LANGUAGE,
    ) -> TfidfModel:
        """A fitted model rebuilt from its saved parts (constructor parameters, vocabulary, idf, stop words).

        Raises InvalidInputError when a parameter breaks its rule.
        """
        defaults = {"stem": False, "cjk": "ngrams"}  # bundles written before these existed
        try:
            values = {n: params.get(n, defaults.get(n)) if n in defaults else params[n] for n in cls._PARAMS}
            model = cls(**values, ngram_range=tuple(params["ngram_range"]))
            model._validate()
        except (KeyError, TypeError, ValueError, re.error) as exc:
            raise InvalidInputError(f"vectoriser parameters are invalid: {exc}") from None
        if len(terms) != len(idf):
            raise InvalidInputError(f"vocabulary has {len(terms)} terms but {len(idf)} idf weights")
        model.stop_words_ = dict(stop_words)
        model.language_ = language
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
        if self.stop_words not in STOP_WORDS:
            raise InvalidInputError(f"stop_words must be 'auto', 'english' or None, got {self.stop_words!r}")
        if self.cjk not in CJK_MODES:
            raise InvalidInputError(f"cjk must be one of {', '.join(CJK_MODES)}, got {self.cjk!r}")
        if not isinstance(self.stem, bool):
            raise InvalidInputError(f"stem must be true or false, got {self.stem!r}")
        re.compile(self.token_pattern)

    def _ngrams(self) -> tuple[int, int]:
        low, high = self.ngram_range
        return int(low), int(high)

    def _stop_words_for(self, language: str) -> frozenset[str]:
        # Characters and bigrams of CJK text are not words: a word list removes
        # useful characters with the function words (THUCNews P@10 0.685 with
        # stopwordsiso's Chinese list, 0.694 without); idf and max_df weigh
        # the common characters down instead.
        if self.stop_words is None or (language in CJK_LANGUAGES and self.cjk == "ngrams"):
            return frozenset()
        return stop_words(language, english_stop_words())

    def build_analyzer(self, language: str | None = None) -> Callable[[str], list[str]]:
        """The callable that turns a text of ``language`` (default: the model's) into its terms.

        For English this gives scikit-learn's word analyzer's terms (tested
        against it) without importing scikit-learn, in about half the time.
        """
        language = str(language or getattr(self, "language_", DEFAULT_LANGUAGE))
        stop = self.stop_words_.get(language) if hasattr(self, "stop_words_") else None
        if stop is None:
            stop = self._stop_words_for(language)
        # The default pattern's word boundaries are implied: findall takes
        # maximal runs of word characters either way, and the scan is faster
        # without the two boundary tests per position.
        pattern = None if self.token_pattern == TOKEN_PATTERN else self.token_pattern
        return Analyzer(language, stop, token_pattern=pattern, ngram_range=self._ngrams(), stem=self.stem, cjk=self.cjk)

    def fit(
        self,
        titles: Sequence[str],
        bodies: Sequence[str],
        languages: Sequence[str] | None = None,
        *,
        counter: TermCounter | None = None,
    ) -> TfidfModel:
        """Learn vocabulary and idf from the corpus and keep its matrix in ``matrix_``.

        ``languages`` gives each article's language (ISO 639-1); default English.
        ``counter(model, languages, titles, bodies)`` counts the terms elsewhere
        (on a cluster: :func:`recommender.cluster.cluster_count_terms`); it
        must return what :func:`recommender.counting.count_terms` returns.
        """
        self._validate()
        if len(titles) != len(bodies):
            raise InvalidInputError(f"titles and bodies must have the same length, got {len(titles)} and {len(bodies)}")
        n_docs = len(titles)
        if n_docs == 0:
            raise InvalidInputError("cannot fit on an empty corpus")
        if languages is None:
            languages = [DEFAULT_LANGUAGE] * n_docs
        if len(languages) != n_docs:
            raise InvalidInputError(f"languages must give one language per article, got {len(languages)} for {n_docs}")
        counted = Counter(languages)
        self.language_ = counted.most_common(1)[0][0]
        self.stop_words_ = {language: self._stop_words_for(language) for language in sorted(counted)}
        if counter is not None:
            terms, title_counts, body_counts = counter(self, languages, titles, bodies)
        else:
            analyzers = {language: self.build_analyzer(language) for language in sorted(counted)}
            terms, title_counts, body_counts = count_terms(analyzers, languages, titles, bodies, self.n_jobs)
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
        self.matrix_ = self._weight(select_columns(counts, columns))
        return self

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

    def transform(
        self, titles: Sequence[str], bodies: Sequence[str], languages: Sequence[str] | None = None
    ) -> sp.csr_matrix:
        """L2-normalised TF-IDF rows for texts, in the fitted vocabulary."""
        self._check_fitted()
        rows = [
            self.transform_one(title, body, languages[i] if languages is not None else None)
            for i, (title, body) in enumerate(zip(titles, bodies, strict=True))
        ]
        indptr = np.cumsum([0, *(cols.size for cols, _ in rows)])
        indices = np.concatenate([cols for cols, _ in rows]) if rows else np.empty(0, np.int32)
        data = np.concatenate([vals for _, vals in rows]) if rows else np.empty(0, np.float32)
        return sp.csr_matrix((data, indices, indptr), shape=(len(rows), len(self.terms_)))

    def transform_one(self, title: str, body: str, language: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One text (of ``language``, default the model's) as a sparse vector: sorted columns and unit weights.

        The same numbers as the fitted matrix's row of the same text; an empty
        or all-unknown text gives two empty arrays.
        """
        columns, weights, _, _ = self.transform_counting(title, body, language)
        return columns, weights

    def transform_counting(
        self, title: str, body: str, language: str | None = None
    ) -> tuple[np.ndarray, np.ndarray, int, int]:
        """:meth:`transform_one`, plus how many of the text's tokens the vocabulary knows, and how many there are."""
        self._check_fitted()
        analyzer = self._analyzer(language)
        vocabulary = self.vocabulary_
        counts: dict[int, float] = {}
        known = total = 0
        for text, weight in ((title, float(self.title_weight)), (body, 1.0)):
            if not text:
                continue
            terms = analyzer(text)
            total += len(terms)
            for term in terms:
                column = vocabulary.get(term)
                if column is not None:
                    known += 1
                    if weight:
                        counts[column] = counts.get(column, 0.0) + weight
        if not counts:
            return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32), known, total
        columns = np.fromiter(counts.keys(), dtype=np.int32, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        order = np.argsort(columns)
        columns, tf = columns[order], tf[order]
        if self.sublinear_tf:
            tf = 1.0 + np.log(tf)
        weights = tf * self.idf_[columns]
        weights /= np.sqrt(np.dot(weights, weights))
        return columns, weights.astype(np.float32), known, total

    def _analyzer(self, language: str | None) -> Callable[[str], list[str]]:
        """The analyser of ``language`` (default: the model's), built once."""
        language = language or self.language_
        cache: dict[str, Callable[[str], list[str]]] = self.__dict__.setdefault("_analyzers", {})
        analyzer = cache.get(language)
        if analyzer is None:
            analyzer = cache[language] = self.build_analyzer(language)
        return analyzer


@lru_cache(maxsize=1)
def english_stop_words() -> frozenset[str]:
    """scikit-learn's English stop-word list, read without importing scikit-learn.

    Importing the package runs its whole ``__init__`` (about a second); the
    list lives in a plain module that can be loaded on its own.
    """
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
