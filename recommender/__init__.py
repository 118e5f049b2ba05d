"""Related-article recommendations: TF-IDF, exact cosine neighbours, versioned bundles.

```python
from recommender import Recommender, TrainOptions, read_corpus
rec = Recommender.fit(read_corpus("articles.jsonl"), TrainOptions(k=20))
rec.related("some-id", limit=5)
rec.save("models"); Recommender.load("models")
```

The names below are imported on first use, so that ``import recommender``
(and so the command line's start-up) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from .errors import (
    BundleError,
    CorpusError,
    InvalidInputError,
    NotFittedError,
    RecommenderError,
    UnknownArticleError,
)

_LAZY = {
    "Recommender": "recommend",
    "TrainOptions": "options",
    "read_corpus": "corpus",
    "Article": "corpus",
    "Filters": "values",
    "RelatedItem": "values",
    "RelatedResult": "values",
}

if TYPE_CHECKING:
    from .corpus import Article, read_corpus
    from .options import TrainOptions
    from .recommend import Recommender
    from .values import Filters, RelatedItem, RelatedResult

__all__ = [
    "Article",
    "BundleError",
    "CorpusError",
    "Filters",
    "InvalidInputError",
    "NotFittedError",
    "Recommender",
    "RecommenderError",
    "RelatedItem",
    "RelatedResult",
    "TrainOptions",
    "UnknownArticleError",
    "__version__",
    "read_corpus",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'recommender' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
