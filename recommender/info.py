"""Readable summaries of a bundle manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def format_manifest(manifest: dict[str, Any], folder: Path | None) -> str:
    """The manifest as aligned ``key: value`` lines."""
    size = sum(f.get("bytes", 0) for f in manifest.get("files", {}).values())
    rows: list[tuple[str, Any]] = [
        ("version", manifest.get("version")),
        ("folder", folder),
        ("created", manifest.get("created_at")),
        ("format", manifest.get("format_version")),
        ("articles", manifest.get("articles")),
        ("vocabulary", manifest.get("vocabulary")),
        ("sections", manifest.get("sections")),
        ("languages", ", ".join(f"{k} {v}" for k, v in (manifest.get("language_counts") or {}).items())),
        ("neighbours per article", manifest.get("k")),
        ("corpus digest", manifest.get("corpus_digest")),
        ("bundle size", f"{size / 1e6:.1f} MB in {len(manifest.get('files', {}))} files"),
    ]
    params = manifest.get("parameters", {})
    rows += [(f"param {k}", v) for k, v in sorted(params.items())]
    libs = manifest.get("libraries", {})
    rows += [(f"lib {k}", v) for k, v in sorted(libs.items())]
    for extra in manifest.get("boilerplate", [])[:50]:
        rows.append(("boilerplate", extra))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
