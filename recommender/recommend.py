"""Query a loaded bundle: related articles for an id or for free text."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from . import checkpoint
from .bundle import CURRENT, default_models_dir, load_bundle, write_bundle
from .changelog import open_log
from .corpus import Article, CorpusReport
from .errors import BundleError, InvalidInputError, UnknownArticleError
from .fit import fit_parts
from .livechanges import LiveChanges
from .options import TrainOptions
from .schema import ModelParts
from .search import SearchIndex
from .selection import ArticleFacts, Picker
from .semantic import SemanticView
from .tfidf import TfidfModel
from .values import (
    MAX_LIMIT,
    NO_FILTERS,
    Contribution,
    Filters,
    RelatedItem,
    RelatedResult,
    check_language,
    check_limit,
    parse_when,
)

__all__ = [
    "MAX_LIMIT",
    "NO_FILTERS",
    "Contribution",
    "Filters",
    "Recommender",
    "RelatedItem",
    "RelatedResult",
    "check_limit",
    "parse_when",
]

# Lexical candidates read per requested item before the semantic re-scoring.
_CANDIDATES = 100
_WHY_TERMS = 5
# Lexical cosine at which a draft counts as the text of a corpus article.
_SAME_TEXT = 1e-6


class Recommender(LiveChanges):
    """A fitted related-article model, queryable in memory.

    Build one with :meth:`fit` (from articles) or :meth:`load` (from a saved
    bundle); :meth:`save` writes it as a new bundle. Both hold the same
    :class:`~recommender.schema.ModelParts`, so a model answers the same before
    and after a save and load.
    """

    def __init__(self, parts: ModelParts) -> None:
        self.parts = parts
        self.manifest = parts.manifest
        self.base_version: str = parts.version
        # The last change of the models dir's change log held by this model:
        # the bundle's own (it was built from the log up to there), then each applied one.
        self.bundle_seq = self.log_seq = int(self.manifest.get("log_seq") or 0)
        self.live = None
        self.log_id = ""  # the identity of the change log applied (see ChangeLog.log_id)
        self.options = TrainOptions.from_parameters(self.manifest.get("parameters"))
        self.languages: list[str] = list(self.manifest["languages"])
        self.vectorizer = TfidfModel.from_fitted(
            self.manifest["parameters"],
            parts.terms,
            parts.arrays["idf"],
            parts.stop_words,
            language=str(self.manifest.get("language") or self.languages[0] if self.languages else "en"),
        )
        self.ids = parts.ids
        self.index_of = {article_id: i for i, article_id in enumerate(self.ids)}
        # Plain ndarray views of the memory maps: indexing an np.memmap pays
        # for a subclass object on every access, which shows on the hot path.
        arrays = {name: np.asarray(value).view(np.ndarray) for name, value in parts.arrays.items()}
        self.neighbours = arrays["neighbours"]
        self.neighbour_scores = arrays["neighbour_scores"]
        self.candidate_floor = arrays["candidate_floor"]
        self.augmented_norm = arrays["augmented_norm"]
        self.tie_key = arrays["tie_key"]
        n_docs, n_terms = len(self.ids), len(parts.terms)
        self.matrix = sp.csr_matrix(
            (arrays["matrix_data"], arrays["matrix_indices"], arrays["matrix_indptr"]),
            shape=(n_docs, n_terms),
            copy=False,
        )
        postings = sp.csr_matrix(
            (arrays["postings_data"], arrays["postings_indices"], arrays["postings_indptr"]),
            shape=(n_terms, n_docs),
            copy=False,
        )
        self.search = SearchIndex(postings, self.tie_key)
        options = self.options
        self.min_similarity = options.min_similarity
        self.half_life_days = options.recency_half_life_days
        self.semantic = SemanticView(
            arrays["lsa_terms"],
            arrays["lsa_vectors"],
            arrays["lsa_augmented"],
            options.semantic_weight,
            options.neighbourhood,
            options.neighbourhood_decay,
            options.neighbourhood_strength,
        )
        self._meta_offsets: list[int] = arrays["meta_offsets"].tolist()
        self._meta = parts.metadata
        self.sections: list[str] = parts.sections
        self.dup_group = arrays["dup_group"]
        self.tag_boost = options.tag_boost
        self.section_boost = options.section_boost
        self.facts = ArticleFacts(
            self.ids,
            arrays["section_codes"],
            parts.sections,
            arrays["published"],
            parts.tags,
            self.dup_group,
            self.tie_key,
            arrays["url_group"],
            arrays["language_codes"],
            self.languages,
            with_tag_sets=bool(self.tag_boost),
        )

    @classmethod
    def fit(
        cls,
        articles: CorpusReport | Sequence[Article],
        options: TrainOptions | None = None,
        *,
        progress: bool = False,
        allow_empty: bool = False,
    ) -> Recommender:
        """Fit a model on articles (a :func:`~recommender.read_corpus` report or a list of Article).

        ``options`` default to :class:`~recommender.TrainOptions`'s. A model
        that could answer nothing (empty vocabulary, no article with a
        neighbour) is refused with InvalidInputError unless ``allow_empty``.
        """
        if isinstance(articles, CorpusReport):
            articles = articles.articles
        return cls(fit_parts(articles, options or TrainOptions(), progress=progress, allow_empty=allow_empty))

    def save(self, models_dir: str | os.PathLike[str], *, make_current: bool = True, keep: int = 3) -> Path:
        """Write the model as bundle ``self.version`` in ``models_dir`` (atomically) and return its folder.

        By default it becomes the current bundle and only the newest ``keep``
        versions are kept. A model with live changes applied is refused: its
        bundle would not hold them (``recommender compact`` builds one that does).
        """
        if self.live is not None:
            raise InvalidInputError(
                f"model {self.version} holds live changes that its bundle lacks: compact it instead of saving"
            )
        return write_bundle(models_dir, self.parts, make_current=make_current, keep=keep)

    @classmethod
    def load(
        cls,
        models_dir: str | os.PathLike[str] | None = None,
        version: str = CURRENT,
        *,
        replay: bool = True,
        log_url: str | None = None,
    ) -> Recommender:
        """Load and verify a bundle from the models directory (default: current).

        A bundle whose files or manifest break the schema's rules is refused
        with BundleError naming what is wrong. With ``replay`` (the default)
        the live changes logged since the bundle was built are applied (see
        :meth:`apply`), from the log of the models directory or, given
        ``log_url``, from the one in that database (see :func:`~recommender.changelog.open_log`).
        """
        models_dir = Path(models_dir or default_models_dir())
        parts = load_bundle(models_dir, version)
        try:
            rec = cls(parts)
        except InvalidInputError as exc:
            raise BundleError(f"{parts.folder}: {exc}") from None
        if replay:
            with open_log(models_dir, log_url) as log:
                if not log.exists():
                    return rec
                found = checkpoint.newest(models_dir, rec.base_version, log.last_seq())
                if found is not None:
                    checkpoint.restore(rec, found, log.log_id())
                rec.catch_up(log)
        return rec

    def __len__(self) -> int:
        return len(self.index_of)

    def __contains__(self, article_id: object) -> bool:
        return article_id in self.index_of

    # Metadata ---------------------------------------------------------------

    def metadata_bytes(self, index: int) -> bytes:
        """The stored JSON object of one article, as bytes."""
        # Each stored line ends with a newline, left out here.
        if self.live is not None and index >= self.live.n_base:
            return self.live.metadata[index - self.live.n_base][:-1]
        return self._meta[self._meta_offsets[index] : self._meta_offsets[index + 1] - 1]

    def metadata(self, index: int) -> dict[str, Any]:
        """The stored metadata of the article in row ``index``."""
        return json.loads(self.metadata_bytes(index))  # type: ignore[no-any-return]

    def index_for(self, article_id: str) -> int:
        """The row of ``article_id``; UnknownArticleError when the model lacks it."""
        try:
            return self.index_of[article_id]
        except KeyError:
            raise UnknownArticleError(article_id) from None

    def article(self, article_id: str) -> dict[str, Any]:
        """The stored metadata of one article by id."""
        return self.metadata(self.index_for(article_id))

    def describe(self, items: Sequence[RelatedItem]) -> list[dict[str, Any]]:
        """Items as dicts: the article's metadata, its score and the optional fields."""
        return [{**self.metadata(item.index), "score": round(item.score, 6), **item.extra()} for item in items]

    # Queries ----------------------------------------------------------------

    def related(
        self,
        article_id: str,
        limit: int = 10,
        filters: Filters = NO_FILTERS,
        *,
        explain: bool = False,
        fallback: bool = False,
        now: float | None = None,
    ) -> RelatedResult:
        """The articles most related to a corpus article, best first.

        Near-duplicates of the source and of items already listed are left
        out (``collapsed`` counts them). ``explain`` adds the shared terms
        behind each score; ``fallback`` fills a short list with the newest
        articles of the source's section, marked as such.
        """
        limit = check_limit(limit)
        source = self.index_for(article_id)
        exclude = self._excluded(filters, source)
        allowed = self.facts.allowed(filters, self.facts.wanted_language(filters, self.facts.language_of(source)))
        row, scores = self.box(source)
        full = row.size >= self.neighbours.shape[1]
        if self.tag_boost or self.section_boost:
            row, scores = self.facts.sort(
                row, scores + self.facts.boosts(source, row, self.tag_boost, self.section_boost)
            )
        if self.half_life_days:
            row, scores = self.facts.decay(row, scores, self.half_life_days, now)
        picker = Picker(self.facts, limit, source)
        complete = False
        for index, score in zip(row.tolist(), scores.tolist(), strict=True):
            if index in exclude or (allowed is not None and not allowed[index]):
                continue
            if picker.offer(index, score):
                complete = True
                break
        # The precomputed list ran short. When it is not full it already holds
        # every candidate above the minimum similarity; otherwise the rest is
        # found on demand from the article's own vector.
        searched = fallback or (not complete and full)
        if not complete and full:
            columns, weights = self._row_vector(source)
            z = self.semantic.augmented[source] if self.semantic.active else None
            picker = self._search(columns, weights, z, limit, exclude, allowed, source, now)
        if fallback:
            picker.fill(self.facts.fallback_order(filters.section or self.facts.section_of(source), allowed), exclude)
        result = dataclasses.replace(picker.result(self.version, article_id), searched=searched)
        if explain:
            result = self._explained(result, *self._row_vector(source))
        return result

    def related_to_text(
        self,
        title: str = "",
        body: str = "",
        limit: int = 10,
        filters: Filters = NO_FILTERS,
        *,
        explain: bool = False,
        fallback: bool = False,
        now: float | None = None,
        language: str | None = None,
    ) -> RelatedResult:
        """The corpus articles most related to a draft or any text not in the corpus.

        ``language`` is the draft's (default: detected when the corpus holds
        several languages, else the corpus's); it chooses the analysis and, unless
        ``filters.language`` says otherwise, the language of the articles listed.
        """
        limit = check_limit(limit)
        language = self.text_language(f"{title or ''}\n{body or ''}", language)
        columns, weights = self.vectorizer.transform_one(title or "", body or "", language)
        scores = self.search.scores(columns, weights) if columns.size else None
        z = self._query_vector(columns, weights, scores) if self.semantic.active else None
        exclude = self._excluded(filters, None)
        allowed = self.facts.allowed(filters, self.facts.wanted_language(filters, language))
        picker = self._search(columns, weights, z, limit, exclude, allowed, None, now, scores)
        if fallback:
            picker.fill(self.facts.fallback_order(filters.section, allowed), exclude)
        result = picker.result(self.version, None)
        if explain:
            result = self._explained(result, columns, weights)
        return result

    def text_language(self, text: str, given: str | None = None) -> str:
        """The language of a draft: ``given``, else detected where the corpus has several, else the corpus's."""
        code = check_language(given)
        if code is not None and code != "any":
            return code
        if len(self.languages) > 1:
            from .detect import detect

            found = detect(text)
            if found is not None:
                return found
        return self.vectorizer.language_

    # Internals --------------------------------------------------------------

    def _search(
        self,
        columns: np.ndarray,
        weights: np.ndarray,
        z: np.ndarray | None,
        limit: int,
        exclude: set[int],
        allowed: np.ndarray | None,
        source: int | None,
        now: float | None,
        lexical_scores: np.ndarray | None = None,
    ) -> Picker:
        """Lexical candidates found on demand, re-scored, decayed, collapsed; more are read if needed."""
        excluded = np.fromiter(exclude, dtype=np.int64, count=len(exclude))
        want = max(_CANDIDATES, 2 * limit + 8)
        while True:
            found, lexical = self.search.query(
                columns,
                weights,
                want,
                min_similarity=self.min_similarity,
                exclude=excluded,
                allowed=allowed,
                scores=lexical_scores,
            )
            final = self.semantic.blend(lexical, z, found) if z is not None else lexical
            if source is not None and (self.tag_boost or self.section_boost):
                final = final + self.facts.boosts(source, found, self.tag_boost, self.section_boost)
            if self.half_life_days:
                found, final = self.facts.decay(found, final, self.half_life_days, now)
            else:
                found, final = self.facts.sort(found, final)
            picker = Picker(self.facts, limit, source)
            for index, score in zip(found.tolist(), final.tolist(), strict=True):
                if picker.offer(index, score):
                    return picker
            if found.size < want:
                return picker
            want *= 4

    def _query_vector(
        self, columns: np.ndarray, weights: np.ndarray, scores: np.ndarray | None, exclude: np.ndarray | None = None
    ) -> np.ndarray:
        """A draft's augmented LSA vector: blended with its best lexical neighbours in the whole corpus."""
        return self._query_vector_with_norm(columns, weights, scores, exclude)[0]

    def _query_vector_with_norm(
        self, columns: np.ndarray, weights: np.ndarray, scores: np.ndarray | None, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, float]:
        """:meth:`_query_vector`, and the blend's length before it was scaled to unit length."""
        z = self.semantic.project(columns, weights)
        if self.semantic.strength == 0 or scores is None:
            return z, 1.0
        if exclude is None and self.live is not None:
            exclude = self.live.dead_rows
        neighbours, lexical = self.search.query(
            columns,
            weights,
            self.semantic.count + 1,
            min_similarity=self.min_similarity,
            scores=scores,
            exclude=exclude,
        )
        # A draft with the very text of a corpus article is that article: it
        # is not its own neighbour, so that it gets the article's own vector
        # and box (a stored article's neighbours never include itself).
        if lexical.size and lexical[0] >= 1.0 - _SAME_TEXT:
            neighbours = neighbours[1:]
        return self.semantic.augment_query_with_norm(z, neighbours[: self.semantic.count])

    def _explained(self, result: RelatedResult, columns: np.ndarray, weights: np.ndarray) -> RelatedResult:
        """Each item with ``why``: the shared terms with the largest products of weights."""
        terms = self.vectorizer.terms_
        source = dict(zip(columns.tolist(), weights.astype(np.float64).tolist(), strict=True))
        items = []
        for item in result.items:
            cols, vals = self._row_vector(item.index)
            shared = [
                (source[c] * float(v), c) for c, v in zip(cols.tolist(), vals.tolist(), strict=True) if c in source
            ]
            shared.sort(key=lambda p: (-p[0], terms[p[1]]))
            why = tuple(Contribution(terms[c], w) for w, c in shared[:_WHY_TERMS])
            items.append(RelatedItem(item.index, item.id, item.score, why, item.fallback))
        return dataclasses.replace(result, items=items)

    def _row_vector(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self.live is not None and index >= self.live.n_base:
            return self.live.postings.row(index - self.live.n_base)
        start, stop = self.matrix.indptr[index], self.matrix.indptr[index + 1]
        return np.asarray(self.matrix.indices[start:stop]), np.asarray(self.matrix.data[start:stop])

    def _excluded(self, filters: Filters, source: int | None) -> set[int]:
        excluded = {self.index_of[i] for i in filters.exclude if i in self.index_of}
        if source is not None:
            excluded.add(source)
        if self.live is not None:
            excluded |= self.live.dead
        return excluded
