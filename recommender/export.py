"""Export every article's related list, for static site generators."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import IO

from .recommend import Recommender
from .values import check_limit


def _lines(rec: Recommender, limit: int):  # type: ignore[no-untyped-def]
    for row in rec.rows().tolist():
        article_id = rec.ids[row]
        result = rec.related(article_id, limit)
        related = [{"id": item.id, "score": round(item.score, 6)} for item in result.items]
        yield json.dumps({"id": article_id, "related": related}, ensure_ascii=False) + "\n"


def export_related(rec: Recommender, out: str | os.PathLike[str] | IO[str], limit: int = 10) -> int:
    """Write ``{"id", "related": [{"id", "score"}]}`` per article; returns the count.

    A path is written to a temporary file and renamed, so a failed export
    never leaves a truncated file behind.
    """
    limit = check_limit(limit)
    if not isinstance(out, (str, os.PathLike)):
        count = 0
        for line in _lines(rec, limit):
            out.write(line)
            count += 1
        return count
    target = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent if str(target.parent) else ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            count = export_related(rec, handle, limit)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count
