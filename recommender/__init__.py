"""Related-article recommendations: TF-IDF, exact cosine neighbours, versioned bundles."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (
    BundleError,
    CorpusError,
    InvalidInputError,
    NotFittedError,
    RecommenderError,
    UnknownArticleError,
)

__all__ = [
    "BundleError",
    "CorpusError",
    "InvalidInputError",
    "NotFittedError",
    "RecommenderError",
    "UnknownArticleError",
    "__version__",
]
