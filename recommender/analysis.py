"""Text analysis per language: tokens, elisions, stop words, stemming, CJK segmentation.

English keeps the analysis the engine was tuned with: scikit-learn's word
analyzer (``\\w\\w+`` tokens, its English stop-word list), reproduced without
importing scikit-learn. Every other language gets its own stop words (from
``stopwordsiso``), French and Italian elisions (``l'``, ``qu'``, ``dell'``)
cut from the word they precede, and optional Snowball stemming (PyStemmer).

Chinese, Japanese and Korean are written without spaces, so ``\\w\\w+`` takes
a whole run of ideographs as one token. Their runs are cut into characters
and character bigrams: on the THUCNews development headlines (10,000, 10
topics) that gave P@10 0.699 with no empty box, against 0.589 for jieba's
words and 0.647 for jieba's words plus bigrams (measured with ``recommender
evaluate``; see the README's language table). jieba stays available
(``cjk="jieba"``) for corpora where words matter more.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

# Runs of Han ideographs, kana and hangul (CJK scripts written without spaces).
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
_CJK_FIRST = "\u3040"  # the lowest character of _CJK_RUN
_WORD = re.compile(r"\w\w+")
CJK_LANGUAGES = frozenset({"zh", "ja", "ko"})
# Elided articles and pronouns glued to the next word by an apostrophe.
_ELISIONS = {
    "fr": re.compile(r"\b(?:qu|lorsqu|puisqu|jusqu|quoiqu|presqu|quelqu|[cdjlmnst])['’](?=\w)"),
    "it": re.compile(r"\b(?:dell|dall|nell|sull|coll|all|quest|quell|bell|sant|[cdlmnstv]|un)['’](?=\w)"),
    "ca": re.compile(r"\b[dlmnst]['’](?=\w)"),
}
# Words whose apostrophe is part of them, written as one token.
_KEEP_APOSTROPHE = {"fr": re.compile(r"\baujourd['’]hui\b")}
_STEMMERS = {
    "ar": "arabic", "ca": "catalan", "da": "danish", "de": "german", "el": "greek", "en": "english",
    "es": "spanish", "eu": "basque", "fi": "finnish", "fr": "french", "ga": "irish", "hi": "hindi",
    "hu": "hungarian", "hy": "armenian", "id": "indonesian", "it": "italian", "lt": "lithuanian", "ne": "nepali",
    "nl": "dutch", "no": "norwegian", "pl": "polish", "pt": "portuguese", "ro": "romanian", "ru": "russian",
    "sr": "serbian", "sv": "swedish", "ta": "tamil", "tr": "turkish", "yi": "yiddish",
}  # fmt: skip
DEFAULT_LANGUAGE = "en"


def normalize_language(code: str | None) -> str | None:
    """A language tag reduced to its primary subtag, lower case ('de-AT' -> 'de'); None when empty."""
    if not code:
        return None
    primary = re.split(r"[-_]", code.strip(), maxsplit=1)[0].lower()
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None


@lru_cache(maxsize=64)
def stop_words(language: str, english: frozenset[str] | None = None) -> frozenset[str]:
    """The stop words of ``language``: scikit-learn's list for English, stopwordsiso's for the others."""
    if language == "en" and english is not None:
        return english
    import stopwordsiso

    return frozenset(stopwordsiso.stopwords(language)) if stopwordsiso.has_lang(language) else frozenset()


def can_stem(language: str) -> bool:
    return language in _STEMMERS


class Analyzer:
    """Turns one language's text into terms: lower case, tokens, stop words out, optional stems and n-grams.

    For English without stemming and n-grams this gives scikit-learn's word
    analyzer's terms exactly (tested against it).
    """

    def __init__(
        self,
        language: str,
        stop: frozenset[str],
        *,
        token_pattern: str | None = None,
        ngram_range: tuple[int, int] = (1, 1),
        stem: bool = False,
        cjk: str = "ngrams",
    ) -> None:
        self.language = language
        self.stop_words = stop
        self.findall = re.compile(token_pattern).findall if token_pattern else _WORD.findall
        self.min_n, self.max_n = ngram_range
        self.elision = _ELISIONS.get(language)
        self.keep = _KEEP_APOSTROPHE.get(language)
        self.cjk = cjk
        self.always_cjk = language in CJK_LANGUAGES
        self.stem: Callable[[list[str]], list[str]] | None = None
        if stem and language in _STEMMERS:
            import Stemmer

            self.stem = Stemmer.Stemmer(_STEMMERS[language]).stemWords
        # Nothing but tokens and stop words to apply (unless the text holds CJK characters).
        self.plain = (
            self.keep is None and self.elision is None and not self.always_cjk and self.stem is None and self.max_n == 1
        )

    def __call__(self, text: str) -> list[str]:
        text = text.lower()
        if self.plain and (text.isascii() or not _has_cjk(text)):
            # The common case (English and most languages, one-word terms),
            # kept as short as scikit-learn's analyzer: it runs once per text.
            stop = self.stop_words
            return [t for t in self.findall(text) if t not in stop]
        if self.keep is not None:
            text = self.keep.sub(lambda m: m.group(0).replace("'", "").replace("’", ""), text)
        if self.elision is not None:
            text = self.elision.sub("", text)
        tokens = self._mixed(text) if self.always_cjk or _has_cjk(text) else self.findall(text)
        stop = self.stop_words
        tokens = [t for t in tokens if t not in stop]
        if self.stem is not None:
            tokens = self.stem(tokens)
        if self.max_n == 1:
            return tokens
        grams = list(tokens) if self.min_n == 1 else []
        for n in range(max(self.min_n, 2), min(self.max_n, len(tokens)) + 1):
            grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        return grams

    def _mixed(self, text: str) -> list[str]:
        """Tokens of a text holding CJK runs: the runs segmented, the rest as usual."""
        tokens: list[str] = []
        start = 0
        for run in _CJK_RUN.finditer(text):
            tokens.extend(self.findall(text[start : run.start()]))
            tokens.extend(segment_cjk(run.group(0), self.cjk))
            start = run.end()
        tokens.extend(self.findall(text[start:]))
        return tokens


def _has_cjk(text: str) -> bool:
    """True when ``text`` holds a CJK character.

    Searching every text with the character class cost a third of English
    analysis time (20 Newsgroups: 0.30 s of 1.0 s); ``isascii`` answers in
    constant time and ``max`` scans in C, so most texts never reach the search.
    """
    return not text.isascii() and max(text) >= _CJK_FIRST and _CJK_RUN.search(text) is not None


def segment_cjk(run: str, how: str) -> list[str]:
    """A run of CJK characters as characters and character bigrams, or as jieba's words."""
    if how == "jieba":
        return _jieba_words(run)
    return [*run, *(run[i : i + 2] for i in range(len(run) - 1))]


def _jieba_words(run: str) -> list[str]:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return [w for w in jieba.lcut(run) if w.strip()]
