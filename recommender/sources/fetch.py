"""Fetching a source's URL: http(s) only, with a timeout, a size limit and a user agent.

The standard library's ``urllib`` is enough for the few documents a source
reads (a feed, a sitemap and its pages, pages of a WordPress REST API); every
failure becomes a :class:`~recommender.errors.CorpusError` naming the URL.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import CorpusError


@dataclass(frozen=True)
class Fetched:
    """A fetched document: the final URL (after redirects), its content type and its bytes."""

    url: str
    content_type: str
    body: bytes
    headers: dict[str, str]


class _HttpOnly(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to http(s) URLs."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def check_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host; CorpusError otherwise."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise CorpusError(f"{url}: only http and https URLs can be fetched")
    return url


def fetch(url: str, *, timeout: float, max_bytes: int, user_agent: str, accept: str = "*/*") -> Fetched:
    """GET ``url``; CorpusError naming it on a refused scheme, a timeout, an HTTP error or a body over the limit."""
    check_url(url)
    request = urllib.request.Request(url, headers={"User-Agent": user_agent, "Accept": accept})
    opener = urllib.request.build_opener(_HttpOnly())
    try:
        with opener.open(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise CorpusError(f"{url}: the document is {int(declared)} bytes, over the limit of {max_bytes}")
            body = response.read(max_bytes + 1)
            if len(body) > max_bytes:
                raise CorpusError(f"{url}: the document is over the limit of {max_bytes} bytes")
            return Fetched(
                response.geturl(),
                response.headers.get_content_type(),
                body,
                {k.lower(): v for k, v in response.headers.items()},
            )
    except urllib.error.HTTPError as exc:
        raise CorpusError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise CorpusError(f"{url}: cannot be fetched: {exc.reason}") from None
    except TimeoutError:
        raise CorpusError(f"{url}: no answer within {timeout:g} s") from None
    except OSError as exc:
        raise CorpusError(f"{url}: cannot be fetched: {exc}") from None
