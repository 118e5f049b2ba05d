"""The one schema of a fitted model: what it holds in memory and what a bundle stores.

Training fills a :class:`ModelParts`, :func:`recommender.bundle.write_bundle`
writes exactly these parts, :func:`recommender.bundle.load_bundle` reads them
back (checking every array's dtype and shape against :data:`ARRAYS` and the
counts against each other), and :class:`recommender.Recommender` queries them.
Array names, dtypes and file names are spelt here and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import BundleError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .corpus import Article

FORMAT_VERSION = 3
MANIFEST = "manifest.json"
IDS_FILE = "ids.txt"
TERMS_FILE = "terms.txt"
STOP_WORDS_FILE = "stop_words.json"
METADATA_FILE = "metadata.jsonl"
SECTIONS_FILE = "sections.json"
TAGS_FILE = "tags.json"
# The articles a model was fitted on (as given, before boilerplate stripping),
# one corpus.article_record per line in corpus order: what a compaction refits
# on. Listed with its checksum like every file, but read (and verified) only by
# bundle.read_records, never on load: it is the size of the corpus's text.
ARTICLES_FILE = "articles.jsonl"


@dataclass(frozen=True)
class ArraySpec:
    """One stored array: its dtype and what each axis counts."""

    dtype: type[np.generic]
    # Per axis: "articles", "terms", "k", "d" (semantic dimensions), "nnz"
    # (stored TF-IDF entries), "articles+1"/"terms+1" (CSR row starts).
    axes: tuple[str, ...]


ARRAYS: dict[str, ArraySpec] = {
    "neighbours": ArraySpec(np.int32, ("articles", "k")),
    "neighbour_scores": ArraySpec(np.float32, ("articles", "k")),
    # The lexical cosine of each article's last training candidate (0 when it had fewer):
    # a live article must reach it to be a candidate of that article's list.
    "candidate_floor": ArraySpec(np.float32, ("articles",)),
    "matrix_data": ArraySpec(np.float32, ("nnz",)),
    "matrix_indices": ArraySpec(np.int32, ("nnz",)),
    "matrix_indptr": ArraySpec(np.int64, ("articles+1",)),
    "postings_data": ArraySpec(np.float32, ("nnz",)),
    "postings_indices": ArraySpec(np.int32, ("nnz",)),
    "postings_indptr": ArraySpec(np.int64, ("terms+1",)),
    "idf": ArraySpec(np.float64, ("terms",)),
    "tie_key": ArraySpec(np.int64, ("articles",)),
    "dup_group": ArraySpec(np.int32, ("articles",)),
    "url_group": ArraySpec(np.int32, ("articles",)),
    "language_codes": ArraySpec(np.int32, ("articles",)),
    "section_codes": ArraySpec(np.int32, ("articles",)),
    "published": ArraySpec(np.float64, ("articles",)),
    "meta_offsets": ArraySpec(np.int64, ("articles+1",)),
    "lsa_terms": ArraySpec(np.float32, ("terms", "d")),
    "lsa_vectors": ArraySpec(np.float32, ("articles", "d")),
    "lsa_augmented": ArraySpec(np.float32, ("articles", "d")),
    # Each augmented vector's length before it was scaled to unit length (1 without the view).
    "augmented_norm": ArraySpec(np.float32, ("articles",)),
}

# Arrays whose values are row numbers of another axis: checked to be in range
# on load, so that a crafted bundle cannot make a query index out of bounds.
_INDEX_RANGES = {
    "neighbours": ("articles", -1),
    "matrix_indices": ("terms", 0),
    "postings_indices": ("articles", 0),
    "tie_key": ("articles", 0),
    "dup_group": ("articles", 0),
    "url_group": ("articles", -1),
}


@dataclass
class ModelParts:
    """Everything a fitted model consists of; saving and loading move exactly this.

    ``manifest`` holds the version, the parameters (the training options and
    the vectoriser's) and the counts; ``metadata`` is every article's public
    metadata as JSON lines (bytes in memory, a memory map once loaded), cut by
    ``arrays["meta_offsets"]``. ``articles`` are the articles a fitted model
    was fitted on, saved as :data:`ARTICLES_FILE`; a loaded model has none.
    """

    manifest: dict[str, Any]
    ids: list[str]
    terms: list[str]
    stop_words: dict[str, frozenset[str]]  # language -> its stop words
    sections: list[str]
    tags: dict[str, list[int]]
    metadata: Any
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    folder: Path | None = None  # where the parts were loaded from, if they were
    articles: Sequence[Article] | None = None

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    def check(self, where: str) -> None:
        """Raise BundleError (naming ``where``) unless the parts agree with the schema and each other."""
        sizes = self.sizes(where)
        missing = sorted(set(ARRAYS) - set(self.arrays))
        if missing:
            raise BundleError(f"{where}: arrays missing: {', '.join(missing)}")
        unknown = sorted(set(self.arrays) - set(ARRAYS))
        if unknown:
            raise BundleError(f"{where}: unknown arrays: {', '.join(unknown)}")
        for name, spec in ARRAYS.items():
            value = self.arrays[name]
            if value.dtype != np.dtype(spec.dtype):
                raise BundleError(f"{where}: array {name} must be {np.dtype(spec.dtype)}, got {value.dtype}")
            if value.ndim != len(spec.axes):
                raise BundleError(f"{where}: array {name} must have {len(spec.axes)} dimension(s), got {value.ndim}")
            for label, length in zip(spec.axes, value.shape, strict=True):
                expected = sizes.setdefault(label, length)
                if length != expected:
                    raise BundleError(f"{where}: array {name} has {length} along '{label}', expected {expected}")
        for name, (label, low) in _INDEX_RANGES.items():
            value = self.arrays[name]
            if value.size and (int(value.min()) < low or int(value.max()) >= sizes[label]):
                raise BundleError(f"{where}: array {name} holds values outside [{low}, {sizes[label]})")
        row_starts: tuple[tuple[str, str | None], ...] = (
            ("matrix_indptr", "nnz"),
            ("postings_indptr", "nnz"),
            ("meta_offsets", None),
        )
        for name, total in row_starts:
            starts = self.arrays[name]
            end = sizes[total] if total else len(self.metadata)
            if starts[0] != 0 or starts[-1] != end or (starts.size > 1 and np.any(np.diff(starts) < 0)):
                raise BundleError(f"{where}: array {name} is not a valid list of row starts")
        languages = self.manifest.get("languages")
        if not isinstance(languages, list) or not all(
            isinstance(code, str) and re.fullmatch(r"[a-z]{2,3}", code) for code in languages
        ):
            raise BundleError(f"{where}: manifest languages must be a list of language codes, got {languages!r}")
        codes = self.arrays["language_codes"]
        if codes.size and not 0 <= int(codes.min()) <= int(codes.max()) < len(languages):
            raise BundleError(f"{where}: array language_codes holds values outside [0, {len(languages)})")
        codes = self.arrays["section_codes"]
        if codes.size and not -1 <= int(codes.min()) <= int(codes.max()) < len(self.sections):
            raise BundleError(f"{where}: array section_codes holds values outside [-1, {len(self.sections)})")
        n = sizes["articles"]
        for tag, rows in self.tags.items():
            if not isinstance(rows, list) or any(not isinstance(r, int) or not 0 <= r < n for r in rows):
                raise BundleError(f"{where}: tag {tag!r} lists rows outside [0, {n})")

    def sizes(self, where: str) -> dict[str, int]:
        """The axis lengths the manifest and the text files state (checked against each other)."""
        for label, stated, found in (
            ("articles", self.manifest.get("articles"), len(self.ids)),
            ("vocabulary", self.manifest.get("vocabulary"), len(self.terms)),
        ):
            if isinstance(stated, bool) or not isinstance(stated, int) or stated != found:
                raise BundleError(f"{where}: manifest says {label} = {stated!r}, the files hold {found}")
        sizes = {"articles": len(self.ids), "terms": len(self.terms)}
        sizes["articles+1"] = sizes["articles"] + 1
        sizes["terms+1"] = sizes["terms"] + 1
        return sizes
