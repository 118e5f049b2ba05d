"""Boilerplate: lines and sentences that a site's template repeats in many articles.

"This post was last updated on 3 May 2026", "Show Comments (0)", "Your email
address will not be published": such segments say nothing about the article
but, repeated across the corpus, pull unrelated articles together and fill
excerpts. They are found at training time by counting in how many articles
each segment occurs once digits, month and weekday names are masked, then
removed from the text before vectorising and from derived excerpts.

Segmenting every article costs several microseconds per sentence in Python,
so on large corpora the segments are counted on an evenly spaced sample of
2,000 articles, and only articles that contain a found segment's fixed words
are segmented again to strip it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
# Runs of (already translated) digits, and month or weekday names.
_MASK = re.compile(r"#+|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|mon|tue|wed|thu|fri|sat|sun)[a-z]*\b")
_DIGITS = str.maketrans("0123456789", "##########")
_ANCHOR_SPLIT = re.compile(r"#+")
MIN_CHARS = 8
MAX_CHARS = 300
SAMPLE = 2000


def segments(text: str) -> list[str]:
    """Lines of ``text``, long lines split further into sentences."""
    out: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        out.extend(s for s in (_SENTENCE.split(line) if len(line) > 80 else [line]) if s)
    return out


def signature(segment: str) -> str:
    """A segment with case, digits, months, weekdays and spacing folded away."""
    return " ".join(_MASK.sub("#", segment.lower().translate(_DIGITS)).split())


def _signatures(text: str) -> set[str]:
    """The signatures of a text's segments, folded in one pass over all of them.

    Segments hold no newline, so masking them joined by newlines and
    splitting again gives each one's :func:`signature` with one regular
    expression call per text instead of one per segment.
    """
    kept = [s for s in segments(text) if MIN_CHARS <= len(s) <= MAX_CHARS]
    if not kept:
        return set()
    masked = _MASK.sub("#", "\n".join(kept).lower().translate(_DIGITS))
    return {" ".join(part.split()) for part in masked.split("\n")}


def _wordy(sig: str) -> bool:
    """At least MIN_CHARS letters: rules of dashes and bare numbers are not boilerplate."""
    return sum(c.isalpha() for c in sig) >= MIN_CHARS


def _anchor(sig: str) -> str:
    """The longest run of fixed words in a signature, for a cheap substring test."""
    return max((part.strip() for part in _ANCHOR_SPLIT.split(sig)), key=len)


def find_boilerplate(texts: Sequence[str], *, min_share: float = 0.01, min_docs: int = 5) -> list[str]:
    """Signatures of segments found in at least ``max(min_docs, min_share * N)`` articles.

    Sorted by how many articles hold them, most first.
    """
    n = len(texts)
    threshold = max(min_docs, math.ceil(min_share * n))
    if n < threshold:
        return []
    step = max(1, n // SAMPLE)
    sample = texts[::step]
    # On a sample the threshold scales with its size; an evenly spaced sample
    # of 2,000 articles sees a 1 % segment about 20 times (sd ~4.5).
    sample_threshold = max(2, math.ceil(threshold * len(sample) / n))
    seen: Counter[str] = Counter()
    for text in sample:
        seen.update(_signatures(text))
    found = [(count, sig) for sig, count in seen.items() if count >= sample_threshold and _wordy(sig)]
    return [sig for _, sig in sorted(found, key=lambda p: (-p[0], p[1]))]


def _anchor_pattern(signatures: Iterable[str]) -> re.Pattern[str]:
    anchors = sorted({_anchor(s) for s in signatures}, key=len, reverse=True)
    return re.compile("|".join(re.escape(a) for a in anchors if a))


def strip_boilerplate(text: str, signatures: Iterable[str] | set[str]) -> str:
    """``text`` without its boilerplate segments (paragraph breaks kept)."""
    known = signatures if isinstance(signatures, set) else set(signatures)
    if not known or not text:
        return text
    kept_lines = []
    for line in text.split("\n"):
        parts = [s for s in segments(line) if signature(s) not in known]
        kept_lines.append(" ".join(parts))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept_lines)).strip()


class Stripper:
    """Strips a fixed set of signatures, skipping texts that hold none of their fixed words."""

    def __init__(self, signatures: Sequence[str]) -> None:
        self.known = set(signatures)
        self.pattern = _anchor_pattern(self.known) if self.known else None

    def __call__(self, text: str) -> str:
        if self.pattern is None or not text or not self.pattern.search(text.lower()):
            return text
        return strip_boilerplate(text, self.known)
