"""ETags, 304 answers and the response cache of the GET routes.

The ETag and the cache key derive from the model version, the path and the
request's parsed, normalised parameters (``ListQuery.key``), never from the
raw query string.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from fastapi.responses import Response

from ..recommend import Recommender


def cache_key(rec: Recommender, scope: Mapping[str, Any], query_key: bytes, version: str | None = None) -> bytes:
    """The response-cache key of a request: model version (or ``version``), path and normalised query."""
    return b"\0".join(((version or rec.version).encode(), scope["path"].encode(), query_key))


def etag_of(rec: Recommender, key: bytes) -> str:
    return f'"{rec.version}-{hashlib.blake2b(key, digest_size=8).hexdigest()}"'


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def not_modified(scope: Mapping[str, Any], etag: str, cache_control: str) -> Response | None:
    """A 304 when the request's If-None-Match names ``etag``, else None."""
    for name, value in scope["headers"]:
        if name == b"if-none-match" and _etag_matches(value.decode("latin-1"), etag):
            return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control})
    return None
