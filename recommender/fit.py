"""Fitting: validated articles -> TF-IDF -> exact neighbours -> semantic view -> model parts.

Nothing here reads or writes files: :func:`fit_parts` returns the
:class:`~recommender.schema.ModelParts` that a :class:`~recommender.Recommender`
queries in memory and that :mod:`recommender.bundle` saves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np

from .analysis import DEFAULT_LANGUAGE, normalize_language
from .approximate import approximate_candidates, require_kernels
from .boilerplate import Stripper, find_boilerplate
from .bundle import new_version
from .cluster import connect, require_dask
from .corpus import EXCERPT_CHARS, Article
from .errors import InvalidInputError
from .exact import exact_candidates, term_counter
from .options import TrainOptions
from .schema import ARRAYS, ModelParts
from .semantic import augment_with_norms, fit_semantic, rerank_neighbours
from .text import make_excerpt
from .values import parse_when


def corpus_digest(articles: Sequence[Article]) -> str:
    """sha256 over every article's id, title and body, in corpus order."""
    digest = hashlib.sha256()
    for a in articles:
        for part in (a.id, a.title, a.body):
            digest.update(part.encode("utf-8"))
            digest.update(b"\x00")
    return digest.hexdigest()


def metadata_line(article: Article, language: str) -> bytes:
    """An article's stored metadata: its public fields and its language, one JSON line."""
    public = {**article.public(), "language": language}
    return json.dumps(public, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def _languages(articles: Sequence[Article], options: TrainOptions) -> list[str]:
    """Each article's language: its own field, else detected (or English when detection is off)."""
    given = [a.language for a in articles]
    if not options.detect_language:
        return [normalize_language(code) or DEFAULT_LANGUAGE for code in given]
    from .detect import corpus_languages

    return corpus_languages(lambda i: f"{articles[i].title}\n{articles[i].body[:1000]}", given)


def filter_arrays(articles: Sequence[Article]) -> tuple[dict[str, np.ndarray], list[str], dict[str, list[int]]]:
    """Per-article arrays (section code, publication time), section names and tag -> rows, for the filters."""
    sections = sorted({a.section for a in articles if a.section})
    code = {s: i for i, s in enumerate(sections)}
    section_codes = np.array([code[a.section] if a.section else -1 for a in articles], dtype=np.int32)
    published = np.array(
        [np.nan if not a.published_at else parse_when(a.published_at, "published_at") for a in articles],
        dtype=np.float64,
    )
    tags: dict[str, list[int]] = {}
    for i, a in enumerate(articles):
        for tag in a.tags:
            tags.setdefault(tag.lower(), []).append(i)
    return {"section_codes": section_codes, "published": published}, sections, tags


_NOT_WORD = re.compile(r"[\W_]+")
# Query parameters that track a visit and never change what a page shows.
_TRACKING = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|ref)$", re.IGNORECASE)


def title_key(title: str) -> str:
    """A title as compared for duplicates: case-folded, punctuation and spacing ignored."""
    return _NOT_WORD.sub(" ", title.casefold()).strip()


# A reply's subject ("Re: ...", German "AW:", Scandinavian "SV:", forwards) names
# its thread, not a story: replies sharing it are not the same article twice.
_REPLY = re.compile(r"^\s*(?:re|aw|sv|fwd?)\s*:", re.IGNORECASE)


def headline_key(title: str) -> str:
    """:func:`title_key` of a headline; empty for a reply's subject, which is no headline."""
    return "" if _REPLY.match(title) else title_key(title)


def url_key(url: str | None) -> str:
    """A URL as compared for duplicates: host case-folded; fragment, tracking parameters, trailing slash gone.

    Only http(s) and site-relative URLs count: any other scheme says nothing
    about which page an article is (and is never linked).
    """
    if not url:
        return ""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https", "") or not (parts.netloc or parts.path.startswith("/")):
        return ""
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)])
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, query, ""))


# TF-IDF cosine from which two articles with the same headline count as the same
# story told twice. Measured on 20 Newsgroups, whose replies share their thread's
# subject and quote each other: keeping at most one same-title article per box
# cost 0.05 of P@10 (0.841 -> 0.795), grouping same-title pairs from cosine 0.5
# 0.02 (0.823), from 0.65 0.008; with reply subjects ("Re: ...") not counted as
# headlines, 0.0002 (0.8406). From 0.65 no BBC box holds two same headlines;
# 0.7 left 9 such boxes, 0.8 more.
SAME_TITLE_SIMILARITY = 0.65


def duplicate_groups(
    indices: np.ndarray, scores: np.ndarray, threshold: float, titles: Sequence[str] | None = None
) -> np.ndarray:
    """Label each article with its near-duplicate group.

    Two articles are near-duplicates when their cosine reaches ``threshold``
    (a re-post, a syndicated copy, an updated version), or when their
    headlines are equal once normalised (``titles``, from :func:`title_key`)
    and their cosine reaches :data:`SAME_TITLE_SIMILARITY`. Groups are the
    connected components of that relation. Such pairs sit near the top of
    each other's precomputed lists, so the lists are enough to find them.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = indices.shape[0]
    linked = (scores >= threshold) & (indices >= 0)
    if titles is not None:
        keys = np.array(titles, dtype=object)
        rows, cols = np.nonzero((scores >= SAME_TITLE_SIMILARITY) & (indices >= 0))
        same = (keys[rows] == keys[indices[rows, cols]]) & (keys[rows] != "")
        linked[rows[same], cols[same]] = True
    rows, cols = np.nonzero(linked)
    graph = coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, indices[rows, cols])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int32)


def key_groups(keys: Sequence[str]) -> np.ndarray:
    """Per article, the first row with the same (non-empty) key, or -1 when its key is empty or unique."""
    first: dict[str, int] = {}
    counts: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key:
            first.setdefault(key, i)
            counts[key] = counts.get(key, 0) + 1
    return np.array([first[k] if k and counts[k] > 1 else -1 for k in keys], dtype=np.int32)


def remove_boilerplate(articles: Sequence[Article]) -> tuple[list[Article], list[str]]:
    """Articles with template segments removed from body and derived excerpt, and the segments found."""
    found = find_boilerplate([a.body for a in articles])
    if not found:
        return list(articles), []
    strip = Stripper(found)
    return [strip_article(a, strip) for a in articles], found


def strip_article(article: Article, strip: Stripper) -> Article:
    """``article`` without the boilerplate ``strip`` removes, its excerpt re-derived when it was derived."""
    body = strip(article.body)
    if body == article.body:
        return article
    derived = article.excerpt == make_excerpt(article.body or article.title, EXCERPT_CHARS)
    excerpt = make_excerpt(body or article.title, EXCERPT_CHARS) if derived else strip(article.excerpt or "")
    return dataclasses.replace(article, body=body, excerpt=excerpt or None)


def _stopwatch() -> Callable[[], float]:
    """A function returning the seconds since its previous call (rounded to ms)."""
    last = [time.perf_counter()]

    def lap() -> float:
        now = time.perf_counter()
        elapsed, last[0] = now - last[0], now
        return round(elapsed, 3)

    return lap


def _check_ids(articles: Sequence[Article]) -> None:
    if not articles:
        raise InvalidInputError("cannot fit on an empty corpus")
    seen: set[str] = set()
    for a in articles:
        if a.id in seen:
            raise InvalidInputError(f"duplicate article id {a.id!r}: ids must be unique")
        seen.add(a.id)


def fit_parts(
    articles: Sequence[Article],
    options: TrainOptions,
    *,
    progress: bool = False,
    allow_empty: bool = False,
    log_seq: int = 0,
) -> ModelParts:
    """Fit the model and precompute neighbours, in memory.

    Refuses (InvalidInputError) a model that could answer nothing, an empty
    vocabulary or no article with a single neighbour, unless ``allow_empty``.
    ``log_seq`` is the last change of the change log the articles include (a
    compaction's); 0, for a plain training, means every logged change is newer.
    """
    options.validate()
    if options.approximate:
        require_kernels()
    if options.cluster is not None:
        require_dask()  # before the corpus is read and vectorised, not after
    if isinstance(log_seq, bool) or not isinstance(log_seq, int) or log_seq < 0:
        raise InvalidInputError(f"log_seq must be an integer >= 0, got {log_seq!r}")
    _check_ids(articles)
    given = articles
    timings: dict[str, float] = {}
    lap = _stopwatch()
    digest = corpus_digest(articles)
    boilerplate: list[str] = []
    if options.strip_boilerplate:
        articles, boilerplate = remove_boilerplate(articles)
    timings["boilerplate"] = lap()
    languages = _languages(articles, options)
    timings["languages"] = lap()
    # On a cluster, vectorising and the all-pairs step run on its workers; the rest stays here.
    with connect(options.cluster) if options.cluster is not None else contextlib.nullcontext() as client:
        model = options.model().fit(
            [a.title for a in articles], [a.body for a in articles], languages, counter=term_counter(client)
        )
        timings["vectorise"] = lap()
        if not model.terms_ and not allow_empty:
            raise InvalidInputError(
                f"the model would be empty: no term of {len(articles)} article(s) is in at least min_df "
                f"({model.min_df_}) and at most max_df ({options.max_df:g}) of them; "
                "add articles or allow an empty model (--allow-empty)"
            )
        ids = [a.id for a in articles]
        tie_key = np.empty(len(ids), dtype=np.int64)
        tie_key[np.argsort(np.array(ids, dtype=object), kind="stable")] = np.arange(len(ids))
        semantic = options.semantic
        pool = max(options.k, options.candidates) if semantic else options.k
        cluster: dict[str, Any] | None = None
        if options.approximate:
            candidates = approximate_candidates(
                model.matrix_,
                pool,
                group_size=options.approximate_group_size,
                spread=options.approximate_spread,
                tie_key=tie_key,
                min_similarity=options.min_similarity,
                n_jobs=options.n_jobs,
            )
        else:
            candidates, cluster = exact_candidates(model.matrix_, pool, tie_key, options, progress, client)
        timings["neighbours"] = lap()
    if not allow_empty and not np.any(candidates.indices[:, :1] >= 0):
        raise InvalidInputError(
            f"the model would be empty: none of the {len(ids)} article(s) has a neighbour above the minimum "
            f"similarity ({options.min_similarity:g}); add articles or allow an empty model (--allow-empty)"
        )
    n_terms = len(model.terms_)
    lsa = {
        "lsa_terms": np.zeros((n_terms, 0), np.float32),
        "lsa_vectors": np.zeros((len(ids), 0), np.float32),
        "lsa_augmented": np.zeros((len(ids), 0), np.float32),
    }
    vectors = lsa["lsa_augmented"]
    norms = np.ones(len(ids), dtype=np.float32)
    if semantic:
        terms, plain = fit_semantic(model.matrix_, options.semantic_components, n_jobs=options.n_jobs or 2)
        vectors, norms = augment_with_norms(
            plain,
            candidates.indices,
            count=options.neighbourhood,
            decay=options.neighbourhood_decay,
            strength=options.neighbourhood_strength,
        )
        lsa = {"lsa_terms": terms, "lsa_vectors": plain, "lsa_augmented": vectors}
    weight = options.semantic_weight if vectors.shape[1] else 0.0
    neighbours = rerank_neighbours(candidates, vectors, weight, options.k, tie_key)
    if semantic:
        timings["semantic"] = lap()
    filters, sections, tags = filter_arrays(articles)
    matrix = model.matrix_
    postings = matrix.T.tocsr()
    postings.sort_indices()
    metadata = [metadata_line(a, language) for a, language in zip(articles, languages, strict=True)]
    language_list = sorted(set(languages))
    language_code = {code: i for i, code in enumerate(language_list)}
    arrays = {
        "neighbours": neighbours.indices,
        "neighbour_scores": neighbours.scores,
        "augmented_norm": norms,
        "candidate_floor": np.where(candidates.indices[:, -1] >= 0, candidates.scores[:, -1], 0.0),
        "matrix_data": matrix.data,
        "matrix_indices": matrix.indices,
        "matrix_indptr": matrix.indptr,
        "postings_data": postings.data,
        "postings_indices": postings.indices,
        "postings_indptr": postings.indptr,
        "idf": model.idf_,
        "tie_key": tie_key,
        "dup_group": duplicate_groups(
            candidates.indices,
            candidates.scores,
            options.duplicate_threshold,
            [headline_key(a.title) for a in articles],
        ),
        "url_group": key_groups([url_key(a.url) for a in articles]),
        "language_codes": np.array([language_code[code] for code in languages]),
        "meta_offsets": np.cumsum([0] + [len(m) for m in metadata]),
        **filters,
        **lsa,
    }
    arrays = {name: np.ascontiguousarray(value, dtype=ARRAYS[name].dtype) for name, value in arrays.items()}
    timings["lists"] = lap()
    manifest = {
        "version": new_version(digest),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters": {
            **model.get_params(),
            **options.parameters(),
            "semantic_components": int(vectors.shape[1]),
            "semantic_weight": weight,
        },
        "articles": len(ids),
        "vocabulary": n_terms,
        "k": options.k,
        "shape": list(matrix.shape),
        "corpus_digest": digest,
        "sections": len(sections),
        "languages": language_list,
        "language": model.language_,
        "language_counts": dict(sorted(Counter(languages).items())),
        "boilerplate": boilerplate[:100],
        "timings": timings,
        "log_seq": log_seq,
    }
    if cluster is not None:
        manifest["cluster"] = cluster
    return ModelParts(
        manifest,
        ids,
        list(model.terms_),
        model.stop_words_,
        sections,
        tags,
        b"".join(metadata),
        arrays,
        articles=given,
    )
