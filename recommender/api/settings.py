"""Service settings, read from the environment (prefix ``RECOMMENDER_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the service can be configured with.

    ``RECOMMENDER_CORS_ORIGINS`` takes a comma-separated list
    (``https://a.example,https://b.example``); an empty admin token disables
    the reload and write routes. Durations are in seconds.
    """

    model_config = SettingsConfigDict(env_prefix="RECOMMENDER_", extra="ignore")

    models_dir: Path = Path("models")
    # Serve the bundles of shared storage instead of models_dir: any fsspec URL (s3://bucket/models,
    # file:///srv/models; needs recommender[remote]). The current one is downloaded into cache_dir
    # (default: ~/.cache/recommender/<digest of the URL>), which then holds this replica's change log.
    models_url: str | None = None
    cache_dir: Path | None = None
    default_limit: int = Field(5, ge=1, le=100)
    max_limit: int = Field(50, ge=1, le=100)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    admin_token: SecretStr | None = None
    cache_max_age: int = Field(300, ge=0)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # The batch write route (POST /v1/admin/articles) takes a JSON Lines body up to this size.
    max_batch_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    response_cache_size: int = Field(4096, ge=0, le=1_000_000)
    response_cache_bytes: int = Field(32 * 1024 * 1024, ge=0)
    # Every worker checks where models/current points this often (seconds; 0: never) and
    # loads the bundle when the link changes, so that all workers follow a reload.
    model_watch_interval: float = Field(0.5, ge=0, le=60)
    # Every worker reads the change log's newest sequence number this often (seconds; 0:
    # never) and applies the changes it has not seen, so that all workers serve every write.
    log_poll_interval: float = Field(0.1, ge=0, le=60)
    # A worker saves the live changes it applied as a checkpoint every this many changes
    # (0: never), so that a restart or a new worker restores it and replays only the rest.
    checkpoint_every: int = Field(1000, ge=0)
    # Run `recommender compact` this often (seconds; 0: never): it folds the change log
    # into a new bundle, which every worker then loads.
    compact_interval: float = Field(0, ge=0)
    # The change log in a database shared by replicas (an SQLAlchemy URL, e.g.
    # postgresql://user:pw@host/db) instead of changes.sqlite in the models directory.
    log_url: SecretStr | None = None
    max_header_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024)
    header_timeout: float = Field(10.0, gt=0, le=600)
    body_timeout: float = Field(15.0, gt=0, le=600)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("admin_token", "log_url", "models_url", "cache_dir", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _default_within_max(self) -> Settings:
        if self.default_limit > self.max_limit:
            raise ValueError(f"default_limit ({self.default_limit}) must not exceed max_limit ({self.max_limit})")
        if self.models_url and self.compact_interval > 0:
            raise ValueError(
                "compact_interval must be 0 with models_url: a replica's cache is not where bundles are made "
                "(train into the store with 'recommender train --models-dir URL')"
            )
        return self

    def local_models_dir(self) -> Path:
        """The folder bundles are loaded from: ``models_dir``, or the cache of ``models_url``."""
        if not self.models_url:
            return self.models_dir
        from ..remote import default_cache_dir

        return self.cache_dir or default_cache_dir(self.models_url)
