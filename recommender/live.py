"""The live index: articles upserted and deleted since the bundle was built, folded into the loaded model.

A :class:`LiveOverlay` sits on a :class:`~recommender.Recommender` and changes
it in memory, one logged change at a time, in the change log's order:

* An upserted article gets the next row. It is cleaned of the bundle's
  boilerplate, vectorised with the bundle's vocabulary and idf, projected into
  the semantic view and given its own box exactly as a draft would
  (:mod:`recommender.foldin`); the boxes it now beats at their k-th place take
  it in (reverse neighbours). It joins the near-duplicate group of a
  candidate that the training rule would link it to, and shares a canonical
  URL group as trained articles do.
* An edit is a delete of the old row plus an upsert.
* A deleted row is left in place but marked dead: every list skips it at
  once, and a box that runs short reads its next candidates on demand.

Not thread-safe: changes must not be applied while another thread queries
the model (the service applies them on its event loop, where its queries run).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .boilerplate import Stripper
from .changelog import Change
from .corpus import Article, RecordError, parse_record
from .fit import SAME_TITLE_SIMILARITY, headline_key, metadata_line, strip_article, url_key
from .foldin import FoldIn, fold_in
from .rows import Growable, LivePostings, RowStack
from .search import SearchIndex
from .semantic import neighbour_weights
from .values import parse_when

if TYPE_CHECKING:
    from .recommend import Recommender

log = logging.getLogger("recommender.live")

_URL_FIELD = re.compile(rb'"url":("(?:[^"\\]|\\.)*"|null)')


@dataclass(frozen=True, slots=True)
class Applied:
    """One change as applied: ``existed`` tells whether the id was live before it."""

    seq: int
    op: str
    article_id: str
    existed: bool

    @property
    def created(self) -> bool:
        return self.op == "upsert" and not self.existed


class LiveSearch(SearchIndex):
    """The bundle's search index plus the live rows, scored as one corpus (live rows after the bundle's)."""

    def __init__(self, base: SearchIndex, live: LivePostings, tie_key: np.ndarray) -> None:
        super().__init__(base.postings, tie_key)
        self.live = live

    def scores(self, columns: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return np.concatenate((super().scores(columns, weights), self.live.scores(columns, weights)))


class LiveOverlay:
    """The in-memory changes of one model since its bundle: rows added, rows dead, boxes changed."""

    def __init__(self, rec: Recommender) -> None:
        self.rec = rec
        self.n_base = len(rec.ids)
        facts = rec.facts
        self.section_codes = Growable(np.asarray(facts.section_codes))
        self.published = Growable(np.asarray(facts.published))
        self.tie_key = Growable(np.asarray(facts.tie_key))
        self.language_codes = Growable(np.asarray(facts.language_codes))
        width = int(rec.semantic.vectors.shape[1])
        self.vectors = Growable(np.zeros((0, width), np.float32))
        # Every row's augmented vector, trained ones included: a new article joins the
        # neighbourhoods of the articles that would have read it, which turns their vectors.
        self.augmented = Growable(np.asarray(rec.semantic.augmented, dtype=np.float32))
        self.norms = Growable(np.asarray(rec.augmented_norm, dtype=np.float64))
        semantic = rec.semantic
        self.joins = semantic.active and semantic.strength > 0 and semantic.count > 0
        if self.joins:
            ranks = neighbour_weights(semantic.count, semantic.decay)
            self.rank_weights = semantic.strength * ranks / ranks.sum()
        self.postings = LivePostings(len(rec.vectorizer.terms_))
        self.metadata: list[bytes] = []
        # Every row's list as it stands (rows padded with -1, scores with -inf), trained ones included.
        self.k = int(rec.neighbours.shape[1])
        rows = np.asarray(rec.neighbours, dtype=np.int32)
        self.box_rows = Growable(rows)
        self.box_scores = Growable(np.where(rows >= 0, np.asarray(rec.neighbour_scores, dtype=np.float64), -np.inf))
        self.floor = Growable(np.asarray(rec.candidate_floor, dtype=np.float64))
        self.dead: set[int] = set()
        self.dead_rows = np.empty(0, dtype=np.int64)
        groups = np.asarray(rec.dup_group)
        self.next_group = int(groups.max()) + 1 if groups.size else 0
        self._urls: dict[str, int] | None = None
        self.changed: dict[str, str] = {}  # id -> "added", "edited" or "deleted" since the bundle
        self._base_ids: frozenset[str] | None = None
        self.tokens = self.unknown_tokens = 0
        self.strip = Stripper(rec.manifest.get("boilerplate") or [])
        self.duplicate_threshold = rec.options.duplicate_threshold
        self.live_tags: list[list[str]] = []  # the tags of each live row, as given
        # The last change that altered each row's list (0: none since the bundle), and a count
        # of the changes that may alter any list (a new language): what answers may be cached by.
        self.touched = Growable(np.zeros(self.n_base, dtype=np.int64))
        self.epoch = 0
        self._seq = 0
        rec.search = LiveSearch(rec.search, self.postings, self.tie_key.view)
        self._base_vectors = rec.semantic.vectors
        self.rebind()

    # Changes ------------------------------------------------------------------

    def apply(self, changes: Iterable[Change]) -> list[Applied]:
        rec = self.rec
        done = []
        for change in changes:
            if change.seq <= rec.log_seq:
                continue
            existed = change.article_id in rec.index_of
            self._seq = change.seq
            if change.op == "delete":
                if existed:
                    self.delete(change.article_id)
            else:
                try:
                    article = parse_record(change.record or {})
                except RecordError as exc:  # the log only holds checked records: a damaged row is skipped, loudly
                    log.error("change %d (%s) not applied: %s", change.seq, change.article_id, exc.message)
                    article = None
                if article is not None:
                    self.upsert(article)
            rec.log_seq = change.seq
            done.append(Applied(change.seq, change.op, change.article_id, existed))
        return done

    def delete(self, article_id: str) -> None:
        rec = self.rec
        self._kill(rec.index_of.pop(article_id))
        if article_id in self._base():
            self.changed[article_id] = "deleted"
        else:
            self.changed.pop(article_id, None)  # added since the bundle and gone again: neither

    def _base(self) -> frozenset[str]:
        if self._base_ids is None:
            self._base_ids = frozenset(self.rec.ids[: self.n_base])
        return self._base_ids

    def _kill(self, row: int) -> None:
        holders = np.flatnonzero((self.box_rows.view == row).any(axis=1))
        self.touched.view[holders] = self._seq
        self.dead.add(row)
        self.dead_rows = np.fromiter(self.dead, dtype=np.int64, count=len(self.dead))

    def upsert(self, article: Article) -> int:
        """Fold ``article`` in (replacing the live article of the same id); returns its row."""
        rec = self.rec
        old = rec.index_of.get(article.id)
        if old is not None:
            self._kill(old)
        self.changed[article.id] = "edited" if article.id in self._base() else "added"
        article = strip_article(article, self.strip)
        folded = fold_in(rec, article, exclude=self.dead_rows, enters=not self.joins)
        row = len(rec.ids)
        self._add_row(
            article, folded.language, folded.columns, folded.weights, folded.plain, folded.semantic, folded.norm
        )
        rec.index_of[article.id] = row
        own_rows = np.full(self.k, -1, dtype=np.int32)
        own_scores = np.full(self.k, -np.inf)
        for at, (j, score) in enumerate(folded.box):
            own_rows[at], own_scores[at] = j, score
        self.box_rows.append(own_rows)
        self.box_scores.append(own_scores)
        self.touched.append(self._seq)
        self.floor.append(folded.floor)
        if self.joins:
            self._join(row, folded)
        elif folded.enters:
            entering = np.array([j for j, _ in folded.enters], dtype=np.int64)
            self._enter(entering, row, np.array([score for _, score in folded.enters]))
        facts = rec.facts
        facts.group_of.append(self._group(article, folded.candidates, folded.lexical))
        facts.url_of.append(self._url_group(article, row))
        self.tokens += folded.tokens
        self.unknown_tokens += folded.tokens - folded.known_tokens
        return row

    def _add_row(
        self,
        article: Article,
        language: str,
        columns: np.ndarray,
        weights: np.ndarray,
        plain: np.ndarray,
        augmented: np.ndarray,
        norm: float,
    ) -> None:
        rec, facts = self.rec, self.rec.facts
        row = len(rec.ids)
        rec.ids.append(article.id)
        if article.section and article.section not in facts.sections:
            facts.sections.append(article.section)
        self.section_codes.append(facts.sections.index(article.section) if article.section else -1)
        self.published.append(parse_when(article.published_at, "published_at") if article.published_at else np.nan)
        self.tie_key.append(row)  # after every trained article: ties go to the older article
        if language not in rec.languages:
            rec.languages.append(language)
            self.epoch += 1  # lists of one language may now be restricted to it
        self.language_codes.append(rec.languages.index(language))
        self.live_tags.append(list(article.tags))
        self.add_tags(row, article.tags)
        self.postings.append(columns, weights)
        if self.vectors.view.shape[1]:
            self.vectors.append(plain)
            self.augmented.append(augmented)
        self.norms.append(norm)
        self.metadata.append(metadata_line(article, language))
        self._refresh()

    def add_tags(self, row: int, tags: Iterable[str]) -> None:
        """Index the tags of a new ``row`` for the tag filter (and the tag boost)."""
        facts = self.rec.facts
        for tag in tags:
            facts.tags.setdefault(tag.lower(), []).append(row)
        if facts.tags_of:
            names = list(facts.tags)
            facts.tags_of.append(frozenset(names.index(t.lower()) for t in tags))

    def rebind(self) -> None:
        """Point the model at this overlay's arrays (after they were replaced, as a checkpoint restore does)."""
        self.rec.semantic.vectors = RowStack(self._base_vectors, self.vectors)  # type: ignore[assignment]
        self._refresh()

    def _refresh(self) -> None:
        """Point the model's per-row arrays at the grown ones (views change when a buffer grows)."""
        rec, facts = self.rec, self.rec.facts
        facts.section_codes = self.section_codes.view
        facts.published = self.published.view
        facts.tie_key = self.tie_key.view
        facts.language_codes = self.language_codes.view
        rec.tie_key = self.tie_key.view
        rec.search.tie_key = self.tie_key.view
        if self.augmented.view.shape[1]:
            rec.semantic.augmented = self.augmented.view

    def _join(self, row: int, folded: FoldIn) -> None:
        """The new ``row`` joins the neighbourhood of each article that would have read it, then enters its box.

        As training blends an article's vector with its candidates' (rank
        weights, then unit length), each such article's vector takes the new
        one in at the rank its list gives it; its list is re-scored with the
        turned vector (the blend is linear in it), and the new article enters
        when it beats the k-th score. One vectorised pass over those articles.
        """
        reach = folded.reach
        if reach.size == 0:
            return
        weight = self.rec.semantic.weight
        augmented, norms = self.augmented.view, self.norms.view
        plain, own = folded.plain.astype(np.float64), folded.semantic.astype(np.float64)
        rows, scores = self.box_rows.view[reach], self.box_scores.view[reach]
        before = augmented[reach].astype(np.float64)
        lexical = (1.0 - weight) * folded.reach_lexical
        now = lexical + weight * (before @ own)
        rank = np.minimum(np.count_nonzero(scores > now[:, None], axis=1), self.rank_weights.size - 1)
        turned = norms[reach][:, None] * before + self.rank_weights[rank][:, None] * plain[None, :]
        length = np.linalg.norm(turned, axis=1)
        length[length == 0.0] = 1.0
        turned /= length[:, None]
        valid = rows >= 0
        safe = np.where(valid, rows, 0)
        moved = np.einsum("rkd,rd->rk", augmented[safe].astype(np.float64), turned - before)
        scores = np.where(valid, scores + weight * moved, -np.inf)
        order = np.lexsort((self.tie_key.view[safe], -scores), axis=1)
        self.box_rows.view[reach] = np.take_along_axis(rows, order, axis=1)
        self.box_scores.view[reach] = np.take_along_axis(scores, order, axis=1)
        augmented[reach] = turned
        norms[reach] = length
        self.touched.view[reach] = self._seq
        self._enter(reach, row, lexical + weight * (turned @ own))

    def _enter(self, reach: np.ndarray, row: int, score: np.ndarray) -> None:
        """Put ``row`` into the lists of ``reach`` at its place (best first, ties to the lower tie key)."""
        rows, scores = self.box_rows.view[reach], self.box_scores.view[reach]
        keys = self.tie_key.view
        ahead = (scores > score[:, None]) | ((scores == score[:, None]) & (keys[np.maximum(rows, 0)] < keys[row]))
        place = np.count_nonzero(ahead & (rows >= 0), axis=1)
        takes = place < self.k
        if not takes.any():
            return
        reach, rows, scores, place, score = reach[takes], rows[takes], scores[takes], place[takes], score[takes]
        columns = np.arange(self.k)[None, :]
        source = np.where(columns < place[:, None], columns, columns - 1).clip(0)
        new_rows = np.take_along_axis(rows, source, axis=1)
        new_scores = np.take_along_axis(scores, source, axis=1)
        at = columns == place[:, None]
        new_rows[at] = row
        new_scores[at] = score
        self.box_rows.view[reach] = new_rows
        self.box_scores.view[reach] = new_scores
        self.touched.view[reach] = self._seq

    def box(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """The list of ``row`` as it stands: rows and scores (float64), best first, no padding."""
        rows = self.box_rows.view[row]
        valid = rows >= 0
        return rows[valid], self.box_scores.view[row][valid]

    def kth_scores(self, rows: np.ndarray) -> np.ndarray:
        """The k-th score of each row's list (-inf where the list is not full)."""
        return self.box_scores.view[rows, self.k - 1]

    # Near-duplicates and URLs ---------------------------------------------------

    def _group(self, article: Article, candidates: np.ndarray, lexical: np.ndarray) -> int:
        """The near-duplicate group of a new article: that of the best candidate training would link it to."""
        group_of = self.rec.facts.group_of
        headline = headline_key(article.title)
        for j, score in zip(candidates.tolist(), lexical.tolist(), strict=True):
            if score >= self.duplicate_threshold:
                return group_of[j]
            if score < SAME_TITLE_SIMILARITY:
                break
            if headline and headline_key(self.rec.metadata(j).get("title") or "") == headline:
                return group_of[j]
        self.next_group += 1
        return self.next_group - 1

    def _url_group(self, article: Article, row: int) -> int:
        """The canonical-URL group of a new article (-1 when no live article shares its URL)."""
        key = url_key(article.url)
        if not key:
            return -1
        urls = self._url_rows()
        url_of = self.rec.facts.url_of
        other = urls.get(key)
        urls[key] = row
        if other is None or other in self.dead:
            return -1
        if url_of[other] < 0:
            url_of[other] = other
        return url_of[other]

    def _url_rows(self) -> dict[str, int]:
        """Canonical URL -> the newest row holding it (read from the stored metadata on first use)."""
        if self._urls is None:
            urls: dict[str, int] = {}
            meta = self.rec._meta
            for row, match in enumerate(_URL_FIELD.finditer(meta)):
                if match.group(1) != b"null":
                    key = url_key(json.loads(match.group(1)))
                    if key:
                        urls[key] = row
            self._urls = urls
        return self._urls

    # Reports ----------------------------------------------------------------------

    @staticmethod
    def no_drift() -> dict[str, Any]:
        return {"added": 0, "edited": 0, "deleted": 0, "unknown_token_share": 0.0}

    def drift(self) -> dict[str, Any]:
        counts = Counter(self.changed.values())
        return {
            "added": counts["added"],
            "edited": counts["edited"],
            "deleted": counts["deleted"],
            "unknown_token_share": round(self.unknown_tokens / self.tokens, 6) if self.tokens else 0.0,
        }
