"""Query a loaded bundle: related articles for an id or for free text."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import scipy.sparse as sp

from .bundle import CURRENT, LoadedBundle, default_models_dir, load_bundle
from .errors import InvalidInputError, UnknownArticleError
from .index import SearchIndex

MAX_LIMIT = 100


def check_limit(limit: Any, maximum: int = MAX_LIMIT) -> int:
    """``limit`` as an int in [1, maximum], or InvalidInputError naming the rule."""
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or not 1 <= limit <= maximum:
        raise InvalidInputError(f"limit must be an integer in [1, {maximum}], got {limit!r}")
    return int(limit)


def parse_when(value: str | date | datetime | None, name: str) -> float | None:
    """An ISO 8601 date/datetime (or date object) as epoch seconds, UTC when naive."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInputError(f"{name} must be an ISO 8601 date or datetime, got {str(value)[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@dataclass(frozen=True)
class Filters:
    """Restrictions on which articles may appear in a list."""

    section: str | None = None
    tags: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    published_after: float | None = None
    published_before: float | None = None

    @classmethod
    def build(
        cls,
        *,
        section: str | None = None,
        tags: Iterable[str] = (),
        exclude: Iterable[str] = (),
        published_after: Any = None,
        published_before: Any = None,
    ) -> Filters:
        """Validate raw values (dates as ISO strings) into a Filters."""
        return cls(
            section=section or None,
            tags=tuple(t.strip().lower() for t in tags if t and t.strip()),
            exclude=tuple(exclude),
            published_after=parse_when(published_after, "published_after"),
            published_before=parse_when(published_before, "published_before"),
        )

    @property
    def restricts(self) -> bool:
        """True when some article could be filtered out (exclusions aside)."""
        return bool(self.section or self.tags or self.published_after is not None or self.published_before is not None)


NO_FILTERS = Filters()


@dataclass(frozen=True, slots=True)
class RelatedItem:
    """One related article: its row in the bundle, its id and its cosine score."""

    index: int
    id: str
    score: float


@dataclass(frozen=True)
class RelatedResult:
    """A related list and the model that produced it."""

    model_version: str
    source_id: str | None
    items: list[RelatedItem] = field(default_factory=list)
    collapsed: int = 0


class Recommender:
    """A loaded model bundle, ready to answer related-article queries."""

    def __init__(self, bundle: LoadedBundle) -> None:
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.version: str = bundle.manifest["version"]
        self.ids = bundle.ids
        self.index_of = {article_id: i for i, article_id in enumerate(self.ids)}
        self.vectorizer = bundle.vectorizer
        arrays = bundle.arrays
        self.neighbors = arrays["neighbors"]
        self.neighbor_scores = arrays["neighbor_scores"]
        self.tie_key = arrays["tie_key"]
        n_docs = len(self.ids)
        n_terms = int(self.manifest["vocabulary"])
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
        self.min_similarity = float(self.manifest["parameters"]["min_similarity"])
        self._meta_offsets = arrays["meta_offsets"]
        self._section_codes = arrays.get("section_codes")
        self._published = arrays.get("published")
        self.sections: list[str] = bundle.json_file("sections.json") or []
        self._tags: dict[str, list[int]] = bundle.json_file("tags.json") or {}
        self.dup_group = arrays["dup_group"]

    @classmethod
    def load(cls, models_dir: str | os.PathLike[str] | None = None, version: str = CURRENT) -> Recommender:
        """Load and verify a bundle from the models directory (default: current)."""
        return cls(load_bundle(models_dir or default_models_dir(), version))

    def __len__(self) -> int:
        return len(self.ids)

    # Metadata ---------------------------------------------------------------

    def metadata_bytes(self, index: int) -> bytes:
        """The stored JSON object of one article, as bytes."""
        start, stop = self._meta_offsets[index], self._meta_offsets[index + 1]
        return bytes(self.bundle.metadata[start:stop]).rstrip(b"\n")

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
        """Items as dicts: the article's metadata plus its score."""
        return [{**self.metadata(item.index), "score": round(item.score, 6)} for item in items]

    # Queries ----------------------------------------------------------------

    def related(self, article_id: str, limit: int = 10, filters: Filters = NO_FILTERS) -> RelatedResult:
        """The articles most related to a corpus article, best first.

        Near-duplicates of the source and of items already listed are left
        out (``collapsed`` counts them).
        """
        limit = check_limit(limit)
        source = self.index_for(article_id)
        exclude = self._excluded(filters, source)
        allowed = self._allowed(filters)
        row = self.neighbors[source]
        scores = self.neighbor_scores[source]
        picked = _Picker(self, limit, source)
        for j in range(row.shape[0]):
            index = int(row[j])
            if index < 0:
                break
            if index in exclude or (allowed is not None and not allowed[index]):
                continue
            if picked.offer(index, float(scores[j])):
                return picked.result(article_id)
        # The precomputed list ran short. When it is not full it already holds
        # every neighbour above the minimum similarity; otherwise the rest is
        # found on demand from the article's own vector.
        if row.shape[0] and int(row[-1]) >= 0:
            columns, weights = self._row_vector(source)
            picked = self._search(columns, weights, limit, exclude, allowed, source)
        return picked.result(article_id)

    def related_to_text(
        self, title: str = "", body: str = "", limit: int = 10, filters: Filters = NO_FILTERS
    ) -> RelatedResult:
        """The corpus articles most related to a draft or any text not in the corpus."""
        limit = check_limit(limit)
        columns, weights = self.vectorizer.transform_one(title or "", body or "")
        picked = self._search(columns, weights, limit, self._excluded(filters, None), self._allowed(filters), None)
        return picked.result(None)

    def _search(
        self,
        columns: np.ndarray,
        weights: np.ndarray,
        limit: int,
        exclude: set[int],
        allowed: np.ndarray | None,
        source: int | None,
    ) -> _Picker:
        excluded = np.fromiter(exclude, dtype=np.int64, count=len(exclude))
        want = limit
        while True:
            # Ask for spares: some candidates may be collapsed as duplicates.
            found, found_scores = self.search.query(
                columns,
                weights,
                want + limit + 8,
                min_similarity=self.min_similarity,
                exclude=excluded,
                allowed=allowed,
            )
            picked = _Picker(self, limit, source)
            for i, s in zip(found, found_scores, strict=True):
                if picked.offer(int(i), float(s)):
                    return picked
            if found.size < want + limit + 8:
                return picked
            want *= 4

    def _row_vector(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        start, stop = self.matrix.indptr[index], self.matrix.indptr[index + 1]
        return np.asarray(self.matrix.indices[start:stop]), np.asarray(self.matrix.data[start:stop])

    def _excluded(self, filters: Filters, source: int | None) -> set[int]:
        excluded = {self.index_of[i] for i in filters.exclude if i in self.index_of}
        if source is not None:
            excluded.add(source)
        return excluded

    def _allowed(self, filters: Filters) -> np.ndarray | None:
        if not filters.restricts:
            return None
        allowed = np.ones(len(self.ids), dtype=bool)
        if filters.section is not None:
            codes = self._section_codes
            try:
                code = self.sections.index(filters.section)
            except ValueError:
                code = -2  # a section no article has: nothing passes
            allowed &= codes == code if codes is not None else False
        if filters.tags:
            # Several tags: an article with any one of them passes.
            mask = np.zeros(len(self.ids), dtype=bool)
            for tag in filters.tags:
                mask[self._tags.get(tag, [])] = True
            allowed &= mask
        published = self._published
        if filters.published_after is not None:
            allowed &= published >= filters.published_after if published is not None else False
        if filters.published_before is not None:
            allowed &= published <= filters.published_before if published is not None else False
        return allowed


class _Picker:
    """Builds one list: keeps at most one article per near-duplicate group."""

    def __init__(self, rec: Recommender, limit: int, source: int | None) -> None:
        self.rec = rec
        self.limit = limit
        self.items: list[RelatedItem] = []
        self.groups: set[int] = set()
        if source is not None:
            self.groups.add(int(rec.dup_group[source]))
        self.collapsed = 0

    def offer(self, index: int, score: float) -> bool:
        """Add a candidate unless it duplicates one already taken; True when full."""
        group = int(self.rec.dup_group[index])
        if group in self.groups:
            self.collapsed += 1
            return False
        self.groups.add(group)
        self.items.append(RelatedItem(index, self.rec.ids[index], score))
        return len(self.items) >= self.limit

    def result(self, source_id: str | None) -> RelatedResult:
        return RelatedResult(self.rec.version, source_id, self.items, self.collapsed)
