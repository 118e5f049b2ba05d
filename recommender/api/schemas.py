"""Pydantic models: request validation and the OpenAPI description of responses."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from ..values import MAX_LIMIT

MAX_TEXT_CHARS = 200_000


class Contribution(BaseModel):
    """One term's share of an item's lexical score."""

    term: str
    contribution: float


class Article(BaseModel):
    """The stored metadata of one article."""

    id: str
    title: str
    url: str | None = None
    excerpt: str | None = None
    image: str | None = None
    published_at: str | None = None
    section: str | None = None
    tags: list[str] = Field(default_factory=list)
    author: str | None = None
    language: str | None = None


class ArticleRecord(BaseModel):
    """One article as a corpus file holds it (a JSON Lines line); other fields are kept as they are.

    Only documents the body of the write routes: they check it with the corpus reader's own rules.
    """

    model_config = ConfigDict(extra="allow")

    id: str | int | None = Field(None, description="at most 200 printable characters; the path's id when left out")
    title: str | None = None
    body: str | None = Field(None, description="the text; title and body may not both be empty")
    url: str | None = None
    excerpt: str | None = Field(None, description="default: the body's beginning")
    image: str | None = None
    published_at: str | None = Field(None, description="ISO 8601 date or datetime")
    section: str | None = None
    category: str | None = Field(None, description="the section, when there is no section field")
    tags: list[str] | str | None = Field(None, description="a list, or a comma-separated string")
    author: str | None = None
    language: str | None = Field(None, description="ISO 639-1; default: detected")


class Item(Article):
    """One related article: its stored metadata and its score."""

    score: float
    why: list[Contribution] | None = None
    fallback: bool | None = None


class RelatedResponse(BaseModel):
    """A "You May Also Like" list."""

    model_version: str
    id: str | None = Field(description="the source article id; null for free text")
    collapsed: int = Field(description="near-duplicates left out of the list")
    items: list[Item]


class RelatedRequest(BaseModel):
    """A draft, or any page not in the corpus, to find related articles for."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field("", max_length=MAX_TEXT_CHARS)
    body: str = Field("", max_length=MAX_TEXT_CHARS)
    # Checked by the route with the GET routes' rule (params.limit_value), so that both
    # answer a bad limit with the same message; documented as the integer it must be.
    limit: Annotated[Any, WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT})] = Field(
        None, description="items to return (default from settings)"
    )
    section: str | None = Field(None, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=50)
    exclude: list[str] = Field(default_factory=list, max_length=1000)
    published_after: str | None = Field(None, max_length=40, description="ISO 8601 date or datetime")
    published_before: str | None = Field(None, max_length=40, description="ISO 8601 date or datetime")
    explain: bool = Field(False, description="add `why`: the shared terms behind each score")
    fallback: bool = Field(False, description="fill a short list with the newest articles, flagged")
    language: str | None = Field(
        None,
        max_length=20,
        description="the draft's language (ISO 639-1) and of the articles listed; 'any' lists every language; "
        "default: detected where the corpus holds several",
    )


class Drift(BaseModel):
    """How far the served articles are from the bundle's: what a compaction would fold in."""

    added: int = Field(description="articles written since the bundle was built")
    edited: int = Field(description="articles of the bundle replaced since")
    deleted: int = Field(description="articles of the bundle deleted since")
    unknown_token_share: float = Field(description="share of the written articles' words the bundle's vocabulary lacks")
    log_seq: int
    base_version: str


class ModelSummary(BaseModel):
    """The active model: its bundle's manifest summary and the writes applied since."""

    version: str = Field(
        description="the bundle's version, then '+' and the change log's sequence number once "
        "writes were applied: the model_version of every answer"
    )
    base_version: str = Field(description="the bundle the model was loaded from")
    log_seq: int = Field(description="the last change of the log applied")
    created_at: str
    format_version: int
    articles: int = Field(description="articles served now (the bundle's, plus and minus the writes since)")
    vocabulary: int
    k: int
    parameters: dict[str, object]
    libraries: dict[str, str]
    languages: dict[str, int] = Field(default_factory=dict, description="articles per language in the bundle")
    drift: Drift


class Written(BaseModel):
    """An article written: its id, the change's sequence number in the log and the model that serves it."""

    id: str
    seq: int
    model_version: str


class BatchWritten(BaseModel):
    """A batch written: how many articles it held, how many were new, and the log sequence numbers it took."""

    model_version: str
    articles: int
    created: int
    replaced: int
    first_seq: int
    last_seq: int


class Error(BaseModel):
    """Every error body."""

    detail: str


class Health(BaseModel):
    status: str
    model_version: str | None = None
