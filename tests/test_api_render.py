"""Which URLs the HTML box and the demo page may link to."""

from __future__ import annotations

import pytest

from recommender.api.render import safe_url


@pytest.mark.parametrize(
    "value",
    [
        "https://news.example/2026/a?x=1#y",
        "HTTP://NEWS.EXAMPLE/a",
        "/2026/03/comet-returns",
        "/img/a.jpg?w=120",
    ],
)
def test_http_and_site_relative_urls_pass(value: str) -> None:
    assert safe_url(value) == value


def test_surrounding_spaces_are_stripped() -> None:
    assert safe_url("  /a/b  ") == "/a/b"
    assert safe_url(" https://news.example/a ") == "https://news.example/a"


@pytest.mark.parametrize(
    "value",
    [
        "javascript:alert(1)",
        "data:text/html,x",
        "//evil.example/x",
        "/\\evil.example/x",
        "\\\\evil.example/x",
        "\\/evil.example/x",
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r/evil.example",
        "\t//evil.example",
        "/x\ty",
        "/a\x00b",
        "/a\x7fb",
        "/a\x85b",
        "https://news.example\\@evil.example/",
        "https://news.example/a\nb",
        "\x01https://news.example/",
        "https:evil.example",
        "evil.example/x",
        "",
        "   ",
    ],
)
def test_protocol_relative_backslashes_and_control_characters_are_refused(value: str) -> None:
    assert safe_url(value) is None


@pytest.mark.parametrize("value", [None, 5, ["/a"]])
def test_non_strings_are_refused(value: object) -> None:
    assert safe_url(value) is None
