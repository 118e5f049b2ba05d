"""Corpus files: JSON Lines, JSON arrays and CSV (read by :mod:`recommender.corpus`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..corpus import file_records

if TYPE_CHECKING:
    from . import Record, Source


def records(source: Source) -> Iterator[Record]:
    """The records of one corpus file."""
    yield from file_records(Path(source.location))
