"""Choosing a list's items: filters, boosts, recency decay, near-duplicate collapse, fallback.

:class:`ArticleFacts` holds what these rules read about each article (section,
publication time, tags, duplicate group, tie-break rank); :class:`Picker`
builds one list from scored candidates, best first.
"""

from __future__ import annotations

import time

import numpy as np

from .values import Filters, RelatedItem, RelatedResult

_DAY = 86400.0


class ArticleFacts:
    """Per-article facts the selection rules need (arrays may be memory-mapped)."""

    def __init__(
        self,
        ids: list[str],
        section_codes: np.ndarray,
        sections: list[str],
        published: np.ndarray,
        tags: dict[str, list[int]],
        dup_group: np.ndarray,
        tie_key: np.ndarray,
        url_group: np.ndarray,
        language_codes: np.ndarray,
        languages: list[str],
        *,
        with_tag_sets: bool = False,
    ) -> None:
        self.ids = ids
        self.section_codes = section_codes
        self.sections = sections
        self.published = published
        self.tags = tags
        self.tie_key = tie_key
        self.group_of: list[int] = dup_group.tolist()
        # Same canonical URL (-1: none shared): at most one per list.
        self.url_of: list[int] = url_group.tolist()
        self.language_codes = language_codes
        self.languages = languages
        self.tags_of: list[frozenset[int]] = []
        if with_tag_sets:
            # Article -> its tags (as numbers), for the overlap of two articles.
            held: list[set[int]] = [set() for _ in ids]
            for number, members in enumerate(tags.values()):
                for member in members:
                    held[member].add(number)
            self.tags_of = [frozenset(s) for s in held]

    def section_of(self, index: int) -> str | None:
        code = int(self.section_codes[index])
        return self.sections[code] if code >= 0 else None

    def language_of(self, index: int) -> str:
        return self.languages[int(self.language_codes[index])]

    def wanted_language(self, filters: Filters, query_language: str) -> str | None:
        """The language a list is restricted to (None: any), from the filter and the query's language."""
        wanted = query_language if filters.language is None else filters.language
        if wanted == "any" or (len(self.languages) == 1 and wanted == self.languages[0]):
            return None  # nothing to filter out
        return wanted

    def allowed(self, filters: Filters, language: str | None = None) -> np.ndarray | None:
        """A mask of the articles that pass the filters and are in ``language`` (None when nothing is filtered out)."""
        if not filters.restricts and language is None:
            return None
        allowed = np.ones(len(self.ids), dtype=bool)
        if language is not None:
            code = self.languages.index(language) if language in self.languages else -1
            allowed &= np.asarray(self.language_codes) == code
        if filters.section is not None:
            code = self.sections.index(filters.section) if filters.section in self.sections else -2
            allowed &= np.asarray(self.section_codes) == code
        if filters.tags:
            # Several tags: an article with any one of them passes.
            mask = np.zeros(len(self.ids), dtype=bool)
            for tag in filters.tags:
                mask[self.tags.get(tag, [])] = True
            allowed &= mask
        published = np.asarray(self.published)
        if filters.published_after is not None:
            allowed &= published >= filters.published_after
        if filters.published_before is not None:
            allowed &= published <= filters.published_before
        return allowed

    def boosts(self, source: int, indices: np.ndarray, tag_boost: float, section_boost: float) -> np.ndarray:
        """What shared tags and a shared section add to the scores of ``indices`` for ``source``.

        tag_boost x the Jaccard overlap of the two tag sets, plus
        section_boost when both articles are in the same section.
        """
        extra = np.zeros(indices.size)
        if tag_boost and self.tags_of and self.tags_of[source]:
            own = self.tags_of[source]
            for at, index in enumerate(indices.tolist()):
                theirs = self.tags_of[index]
                if theirs:
                    extra[at] = tag_boost * len(own & theirs) / len(own | theirs)
        if section_boost:
            code = int(self.section_codes[source])
            if code >= 0:
                extra += section_boost * (np.asarray(self.section_codes)[indices] == code)
        return extra

    def sort(self, indices: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best score first, ties broken by the article's rank."""
        order = np.lexsort((self.tie_key[indices], -scores))
        return indices[order], scores[order]

    def decay(
        self, indices: np.ndarray, scores: np.ndarray, half_life_days: float, now: float | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores times 0.5 ** (age / half-life), re-sorted; undated articles are not decayed; padding dropped."""
        idx = indices[indices >= 0]
        if idx.size == 0:
            return idx, scores[:0]
        now = time.time() if now is None else now
        age_days = np.maximum(0.0, (now - np.asarray(self.published)[idx]) / _DAY)
        factor = np.where(np.isnan(age_days), 1.0, 0.5 ** (np.nan_to_num(age_days) / half_life_days))
        return self.sort(idx, scores[indices >= 0] * factor)

    def fallback_order(self, section: str | None, allowed: np.ndarray | None) -> np.ndarray:
        """Articles of ``section`` (any, without one) that pass the filters, newest first."""
        candidates = np.arange(len(self.ids))
        if section is not None and section in self.sections:
            candidates = np.flatnonzero(np.asarray(self.section_codes) == self.sections.index(section))
        if allowed is not None:
            candidates = candidates[allowed[candidates]]
        published = np.nan_to_num(np.asarray(self.published)[candidates], nan=-np.inf)
        return candidates[np.lexsort((self.tie_key[candidates], -published))]


class Picker:
    """Builds one list: at most one article per near-duplicate group and per canonical URL.

    The source's near-duplicate group is left out altogether.
    """

    def __init__(self, facts: ArticleFacts, limit: int, source: int | None) -> None:
        self.limit = limit
        self.items: list[RelatedItem] = []
        self.groups: set[int] = set()
        self._group_of = facts.group_of
        self._url_of = facts.url_of
        self.urls: set[int] = set()
        self._ids = facts.ids
        if source is not None:
            self.groups.add(self._group_of[source])
        self.collapsed = 0

    def offer(self, index: int, score: float, fallback: bool = False) -> bool:
        """Add a candidate unless it duplicates one already taken; True when full."""
        group, url = self._group_of[index], self._url_of[index]
        if group in self.groups or url in self.urls:
            if not fallback:
                self.collapsed += 1
            return False
        self.groups.add(group)
        if url >= 0:
            self.urls.add(url)
        self.items.append(RelatedItem(index, self._ids[index], score, None, fallback))
        return len(self.items) >= self.limit

    def fill(self, candidates: np.ndarray, exclude: set[int]) -> None:
        """Offer ``candidates`` (in order) as fallback items until the list is full."""
        taken = {item.index for item in self.items}
        for index in candidates.tolist():
            if index in exclude or index in taken:
                continue
            if self.offer(index, 0.0, fallback=True):
                break

    def result(self, model_version: str, source_id: str | None) -> RelatedResult:
        return RelatedResult(model_version, source_id, self.items, self.collapsed)
