"""Training options: everything that shapes a model besides the corpus, with their rules.

The defaults live here and only here: a bundle stores the options it was
trained with (:meth:`TrainOptions.parameters`) and loading rebuilds them with
:meth:`TrainOptions.from_parameters`, which applies the same rules.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInputError
from .tfidf import CJK_MODES, TfidfModel

MAX_K = 200


def _number(name: str, value: Any, low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> None:
    """InvalidInputError unless ``value`` is a finite real number in the stated interval."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (low < value if low_open else low <= value) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise InvalidInputError(f"{name} must be a number in {interval}, got {value!r}")


def _integer(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError(f"{name} must be an integer in [{low}, {high}], got {value!r}")


# Options that say where training runs, not what it computes: never stored in a bundle.
_PLACEMENT = ("n_jobs", "cluster")


@dataclass
class TrainOptions:
    """Everything that shapes a model besides the corpus."""

    k: int = 20
    min_similarity: float = 0.05
    duplicate_threshold: float = 0.9
    semantic_components: int = 40
    semantic_weight: float = 0.7
    candidates: int = 50
    neighbourhood: int = 50
    neighbourhood_decay: float = 25.0
    neighbourhood_strength: float = 3.0
    recency_half_life_days: float | None = None
    tag_boost: float = 0.0
    section_boost: float = 0.0
    strip_boilerplate: bool = True
    title_weight: float = 2.0
    min_df: int = 3
    max_df: float = 0.5
    ngram_max: int = 1
    max_features: int | None = None
    stem: bool = False
    cjk: str = "ngrams"
    detect_language: bool = True
    approximate: bool = False
    # Approximate training's groups: about this many articles each, every article in its
    # approximate_spread nearest. Measured on the 300k composed corpus (README, "Approximate mode").
    approximate_group_size: int = 1200
    approximate_spread: int = 4
    n_jobs: int | None = None
    # Where counting and the exact all-pairs step run: None (here), local:N or a Dask scheduler's address.
    cluster: str | None = None

    def validate(self) -> None:
        """Raise InvalidInputError naming the first option that breaks its rule."""
        _integer("k", self.k, 1, MAX_K)
        _number("min_similarity", self.min_similarity, 0, 1, high_open=True)
        _number("duplicate_threshold", self.duplicate_threshold, 0, 1, low_open=True)
        _number("semantic_weight", self.semantic_weight, 0, 1)
        _integer("semantic_components", self.semantic_components, 0, 1000)
        _integer("candidates", self.candidates, 1, 1000)
        _integer("neighbourhood", self.neighbourhood, 0, 1000)
        _number("neighbourhood_decay", self.neighbourhood_decay, 0, 1e6, low_open=True)
        _number("neighbourhood_strength", self.neighbourhood_strength, 0, 1000)
        if self.recency_half_life_days is not None:
            _number("recency_half_life_days", self.recency_half_life_days, 0, 1e6, low_open=True)
        _number("tag_boost", self.tag_boost, 0, 1)
        _number("section_boost", self.section_boost, 0, 1)
        if not isinstance(self.strip_boilerplate, bool):
            raise InvalidInputError(f"strip_boilerplate must be true or false, got {self.strip_boilerplate!r}")
        _integer("ngram_max", self.ngram_max, 1, 3)
        if self.max_features is not None:
            _integer("max_features", self.max_features, 1, 1 << 31)
        for name in ("stem", "detect_language", "approximate"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidInputError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.cjk not in CJK_MODES:
            raise InvalidInputError(f"cjk must be one of {', '.join(CJK_MODES)}, got {self.cjk!r}")
        _integer("approximate_group_size", self.approximate_group_size, 2, 1_000_000)
        _integer("approximate_spread", self.approximate_spread, 1, 16)
        if self.n_jobs is not None:
            _integer("n_jobs", self.n_jobs, -1, 1024)
        if self.cluster is not None:
            from .cluster import check_cluster

            check_cluster(self.cluster)
            if self.approximate:
                raise InvalidInputError(
                    "cluster distributes the exact all-pairs step; approximate training runs on one machine: "
                    "choose one of them"
                )

    @property
    def semantic(self) -> bool:
        """True when the semantic view is part of the model."""
        return self.semantic_weight > 0 and self.semantic_components > 1

    def model(self) -> TfidfModel:
        """The unfitted vectoriser these options describe."""
        return TfidfModel(
            title_weight=self.title_weight,
            min_df=self.min_df,
            max_df=self.max_df,
            ngram_range=(1, self.ngram_max),
            max_features=self.max_features,
            stem=self.stem,
            cjk=self.cjk,
            n_jobs=self.n_jobs,
        )

    def parameters(self) -> dict[str, Any]:
        """The options as stored in a bundle's manifest (``n_jobs`` and ``cluster`` are not part of the model)."""
        values = dataclasses.asdict(self)
        for name in _PLACEMENT:
            values.pop(name)
        return values

    @classmethod
    def from_parameters(cls, parameters: Any) -> TrainOptions:
        """Options rebuilt from a manifest's parameters, validated; missing ones take their defaults."""
        if not isinstance(parameters, dict):
            raise InvalidInputError(f"parameters must be a JSON object, got {type(parameters).__name__}")
        names = {f.name for f in dataclasses.fields(cls)} - set(_PLACEMENT)
        options = cls(**{name: parameters[name] for name in names if name in parameters})
        options.validate()
        return options
