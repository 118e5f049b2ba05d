"""The benchmark corpora: the shared labeled corpora, a deterministic large corpus, and query drafts.

The shared corpora live outside the repository (``../shared/corpora`` from the
repository root, or ``$RECOMMENDER_SHARED_CORPORA``) and are never copied into
it. The large corpus (300k articles by default) is composed deterministically
from real sentences of those corpora and written to a temporary folder: each
synthetic article takes its sentences from two or three real articles of one
label, so it has real neighbours, a realistic vocabulary and realistic
document frequencies.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# name -> (file in the corpora folder, article count)
CORPORA: dict[str, tuple[str, int]] = {
    "bbc": ("bbc-news.jsonl.gz", 2_225),
    "20ng": ("20newsgroups.jsonl.gz", 18_846),
    "arxiv": ("arxiv-2018-2019.jsonl.gz", 126_492),
}
LABELS = {"bbc": "BBC News", "20ng": "20 Newsgroups", "arxiv": "arXiv 2018-2019", "synthetic": "composed sentences"}
SYNTHETIC_SIZE = 300_000

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_WS = re.compile(r"\s+")


def corpora_dir() -> Path:
    """Where the shared corpora are expected."""
    return Path(os.environ.get("RECOMMENDER_SHARED_CORPORA", ROOT.parent / "shared" / "corpora"))


def corpus_path(name: str) -> Path | None:
    """The file of a shared corpus, or None when it is absent."""
    path = corpora_dir() / CORPORA[name][0]
    return path if path.is_file() else None


def missing_reason(name: str) -> str:
    """Why a corpus cannot be used, for the report."""
    return f"{CORPORA[name][0]} not found in {corpora_dir()} (the shared corpora are not in the repository)"


def read_records(path: Path, limit: int | None = None) -> list[dict]:
    """The raw JSON records of a gzip JSON Lines corpus."""
    records = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                records.append(json.loads(line))
                if limit is not None and len(records) >= limit:
                    break
    return records


def sentences(text: str) -> list[str]:
    """A body split into sentences of at least four words, whitespace collapsed."""
    out = []
    for part in _SENTENCE_END.split(text or ""):
        part = _WS.sub(" ", part).strip()
        if len(part.split()) >= 4:
            out.append(part)
    return out


@dataclass
class SentencePool:
    """Real articles grouped by label, each as its title and its sentences."""

    groups: list[list[tuple[str, list[str]]]]

    @classmethod
    def from_records(cls, records: Sequence[dict], label_field: str = "category") -> SentencePool:
        by_label: dict[str, list[tuple[str, list[str]]]] = {}
        for r in records:
            sents = sentences(r.get("body") or "")
            if not sents:
                continue
            key = str(r.get(label_field) or "")
            by_label.setdefault(key, []).append((str(r.get("title") or ""), sents))
        # Sorted for determinism whatever the input order of labels.
        return cls([by_label[k] for k in sorted(by_label) if by_label[k]])

    def compose(self, rng: np.random.Generator, min_words: int, sources: int = 3) -> tuple[str, str]:
        """A (title, body) made of real sentences from ``sources`` articles of one label."""
        sizes = np.array([len(g) for g in self.groups], dtype=np.float64)
        group = self.groups[int(rng.choice(len(self.groups), p=sizes / sizes.sum()))]
        picked = [group[int(i)] for i in rng.integers(0, len(group), size=sources)]
        title = picked[0][0]
        body: list[str] = []
        words = 0
        # Round-robin over the source articles, from a random offset in each.
        cursors = [int(rng.integers(0, len(s))) for _, s in picked]
        guard = 0
        while words < min_words and guard < 10_000:
            src = guard % sources
            sents = picked[src][1]
            sentence = sents[cursors[src] % len(sents)]
            cursors[src] += 1
            body.append(sentence)
            words += len(sentence.split())
            guard += 1
        return title, " ".join(body)


def pool_from_corpora(names: Sequence[str] = ("bbc", "20ng", "arxiv")) -> SentencePool:
    """A sentence pool over the available shared corpora (labels kept apart per corpus)."""
    records: list[dict] = []
    for name in names:
        path = corpus_path(name)
        if path is None:
            continue
        for r in read_records(path):
            records.append({"body": r.get("body"), "title": r.get("title"), "category": f"{name}:{r.get('category')}"})
    if not records:
        raise FileNotFoundError(f"no shared corpus found in {corpora_dir()}")
    return SentencePool.from_records(records)


def synthetic_articles(pool: SentencePool, count: int, seed: int = 20260301) -> Iterator[dict]:
    """``count`` deterministic articles (same seed, same pool -> same articles)."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        min_words = int(rng.integers(60, 260))
        title, body = pool.compose(rng, min_words, sources=int(rng.integers(2, 4)))
        yield {"id": f"syn-{i:07d}", "title": title, "body": body}


def write_synthetic(
    folder: Path, count: int = SYNTHETIC_SIZE, seed: int = 20260301, pool: SentencePool | None = None
) -> Path:
    """Write the synthetic corpus as gzip JSON Lines into ``folder`` (never the repository)."""
    pool = pool or pool_from_corpora()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"synthetic-{count}-{seed}.jsonl.gz"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as handle:
        for article in synthetic_articles(pool, count, seed):
            handle.write(json.dumps(article, ensure_ascii=False) + "\n")
    tmp.rename(path)
    return path


def drafts(records: Sequence[dict], count: int, words: int = 400, seed: int = 7) -> list[tuple[str, str]]:
    """``count`` free-text drafts of about ``words`` words, composed from real sentences.

    Drafts mix sentences of several articles of one label, so they are texts
    the model has never seen but that have real neighbours.
    """
    pool = SentencePool.from_records(records)
    rng = np.random.default_rng(seed)
    return [pool.compose(rng, words, sources=3) for _ in range(count)]
