"""One error family for the whole library.

Each subclass also inherits the builtin that callers would naturally catch, so
``except KeyError`` still works for an unknown article.
"""

from __future__ import annotations


class RecommenderError(Exception):
    """Base class of every error the library raises on purpose."""


class InvalidInputError(RecommenderError, ValueError):
    """A parameter or a piece of input breaks a documented rule."""


class CorpusError(InvalidInputError):
    """A corpus file or record cannot be read; the message names file and line."""


class UnknownArticleError(RecommenderError, KeyError):
    """An article id that the model does not know."""

    def __init__(self, article_id: str) -> None:
        super().__init__(article_id)
        self.article_id = article_id

    def __str__(self) -> str:
        return f"unknown article id {self.article_id!r}"


class BundleError(RecommenderError):
    """A model bundle is missing, damaged, tampered with or of an unknown format."""


class LogUnavailableError(RecommenderError):
    """The change log's database cannot be reached, or failed: the write was not acknowledged."""


class NotFittedError(RecommenderError, AttributeError):
    """A query method was called before ``fit``."""
