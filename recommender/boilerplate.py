"""Boilerplate: lines and sentences that a site's template repeats in many articles.

"This post was last updated on 3 May 2026", "Show Comments (0)", "Your email
address will not be published": such segments say nothing about the article
but, repeated across the corpus, pull unrelated articles together and fill
excerpts. They are found at training time by counting in how many articles
each segment occurs once digits, month and weekday names are masked, then
removed from the text before vectorising and from derived excerpts.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

_SPLIT = re.compile(r"\n+|(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
_MASK = re.compile(
    r"\d+|\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|mon(?:day)?|tue(?:sday)?|wed(?:nesday)?|thu(?:rsday)?|"
    r"fri(?:day)?|sat(?:urday)?|sun(?:day)?)\b"
)
_SPACE = re.compile(r"\s+")
MIN_CHARS = 8


def segments(text: str) -> list[str]:
    """Lines of ``text``, long lines split further into sentences."""
    return [s.strip() for s in _SPLIT.split(text) if s and s.strip()]


def signature(segment: str) -> str:
    """A segment with case, digits, months, weekdays and spacing folded away."""
    return _SPACE.sub(" ", _MASK.sub("#", segment.lower())).strip()


def find_boilerplate(texts: Sequence[str], *, min_share: float = 0.01, min_docs: int = 5) -> list[str]:
    """Signatures of segments found in at least ``max(min_docs, min_share * N)`` articles.

    Sorted by how many articles hold them, most first.
    """
    threshold = max(min_docs, math.ceil(min_share * len(texts)))
    if len(texts) < threshold:
        return []
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update({signature(s) for s in segments(text) if len(s) >= MIN_CHARS})
    found = [(n, sig) for sig, n in counts.items() if n >= threshold and len(sig.replace("#", "")) >= MIN_CHARS]
    return [sig for n, sig in sorted(found, key=lambda p: (-p[0], p[1]))]


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
