"""Versioned model bundles on disk.

A bundle is a folder ``<models_dir>/<version>/`` holding a ``manifest.json``
beside plain arrays (``.npy``, memory-mappable), the article metadata and the
fitted vectoriser. It is written into a hidden temporary folder and renamed
into place; ``<models_dir>/current`` is a symbolic link switched atomically
with ``os.replace``. Loading checks the format version and the sha256 of every
file before anything is unpickled, and only reads from the models directory.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
import scipy.sparse as sp

from .errors import BundleError

FORMAT_VERSION = 2
CURRENT = "current"
MANIFEST = "manifest.json"
_VERSION_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.TZ")
_ARRAYS = (
    "neighbours",
    "neighbour_scores",
    "matrix_data",
    "matrix_indices",
    "matrix_indptr",
    "postings_data",
    "postings_indices",
    "postings_indptr",
    "tie_key",
    "meta_offsets",
)


def default_models_dir() -> Path:
    """``$RECOMMENDER_MODELS_DIR``, or ``models/`` in the working directory."""
    return Path(os.environ.get("RECOMMENDER_MODELS_DIR") or "models")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries a bundle depends on.

    Read from the installed distributions' metadata: importing scikit-learn
    just to ask its version would cost a second.
    """
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    found = {"recommender": __version__, "python": platform.python_version()}
    for name in ("numpy", "scipy", "scikit-learn", "joblib"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - a dependency is always installed
            found[name] = "unknown"
    return found


@dataclass
class BundleContents:
    """What training hands to :func:`write_bundle`."""

    vectorizer: Any
    matrix: sp.csr_matrix
    neighbours: np.ndarray
    neighbour_scores: np.ndarray
    tie_key: np.ndarray
    ids: list[str]
    metadata: list[bytes]
    parameters: dict[str, Any]
    summary: dict[str, Any]
    extra_arrays: dict[str, np.ndarray] | None = None
    extra_json: dict[str, Any] | None = None


def new_version(digest: str, now: datetime | None = None) -> str:
    """A sortable version name: UTC time of creation and a short corpus digest."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z-{digest[:8]}"


def write_bundle(
    models_dir: str | os.PathLike[str],
    contents: BundleContents,
    *,
    make_current: bool = True,
    keep: int = 3,
    before_rename: Callable[[Path], None] | None = None,
) -> Path:
    """Write a bundle atomically and (by default) make it the current one.

    Returns the bundle folder. ``keep`` older versions are left in place (the
    current one is never removed). ``before_rename`` is a test hook called with
    the temporary folder just before it is renamed into place.
    """
    root = Path(models_dir)
    root.mkdir(parents=True, exist_ok=True)
    version = new_version(contents.summary["corpus_digest"])
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=root))
    try:
        files: dict[str, dict[str, Any]] = {}

        def add(name: str, writer: Callable[[Path], object]) -> None:
            path = tmp / name
            writer(path)
            files[name] = {"sha256": _sha256(path), "bytes": path.stat().st_size}

        matrix = contents.matrix
        postings = sp.csr_matrix(matrix.T)
        postings.sort_indices()
        arrays = {
            "neighbours": contents.neighbours.astype(np.int32),
            "neighbour_scores": contents.neighbour_scores.astype(np.float32),
            "matrix_data": matrix.data.astype(np.float32),
            "matrix_indices": matrix.indices.astype(np.int32),
            "matrix_indptr": matrix.indptr.astype(np.int64),
            "postings_data": postings.data.astype(np.float32),
            "postings_indices": postings.indices.astype(np.int32),
            "postings_indptr": postings.indptr.astype(np.int64),
            "tie_key": contents.tie_key.astype(np.int64),
        }
        blob = b"".join(contents.metadata)
        arrays["meta_offsets"] = np.cumsum([0] + [len(m) for m in contents.metadata], dtype=np.int64)
        for name, value in (contents.extra_arrays or {}).items():
            arrays[name] = value
        for name, value in arrays.items():
            add(f"{name}.npy", functools.partial(_save_array, value=value))
        add("metadata.jsonl", lambda p: p.write_bytes(blob))
        add("ids.txt", lambda p: p.write_text("\n".join(contents.ids), encoding="utf-8"))
        add("vectorizer.joblib", lambda p: joblib.dump(contents.vectorizer, p))
        for name, value in (contents.extra_json or {}).items():
            add(name, functools.partial(_save_json, value=value))
        manifest = {
            "format_version": FORMAT_VERSION,
            "version": version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "libraries": library_versions(),
            "parameters": contents.parameters,
            **contents.summary,
            "shape": list(matrix.shape),
            "k": int(contents.neighbours.shape[1]),
            "arrays": sorted(arrays),
            "files": files,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        _fsync_tree(tmp)
        if before_rename is not None:
            before_rename(tmp)
        final = root / version
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if make_current:
        set_current(root, version)
        prune(root, keep=keep)
    return final


def _save_array(path: Path, value: np.ndarray) -> None:
    np.save(path, value, allow_pickle=False)


def _save_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def set_current(models_dir: str | os.PathLike[str], version: str) -> None:
    """Point ``current`` at ``version`` with one atomic rename of a fresh link."""
    root = Path(models_dir)
    _check_version_name(version)
    if not (root / version / MANIFEST).is_file():
        raise BundleError(f"no bundle {version!r} in {root}")
    link = root / f".current-{os.getpid()}"
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(version, link)
    os.replace(link, root / CURRENT)


def current_version(models_dir: str | os.PathLike[str]) -> str | None:
    """The version ``current`` points at, or None when there is none."""
    link = Path(models_dir) / CURRENT
    if not link.is_symlink():
        return None
    return os.readlink(link)


def list_versions(models_dir: str | os.PathLike[str]) -> list[str]:
    """Complete bundle versions in the models directory, oldest first."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if not p.name.startswith(".") and p.name != CURRENT and (p / MANIFEST).is_file()
    )


def prune(models_dir: str | os.PathLike[str], keep: int) -> list[str]:
    """Remove all but the newest ``keep`` versions (never the current one)."""
    root = Path(models_dir)
    current = current_version(root)
    versions = [v for v in list_versions(root) if v != current]
    doomed = versions[: max(0, len(versions) - max(keep - 1, 0))]
    for version in doomed:
        shutil.rmtree(root / version, ignore_errors=True)
    return doomed


def _check_version_name(version: str) -> None:
    if not version or version.startswith(".") or not set(version) <= _VERSION_CHARS:
        raise BundleError(f"bad bundle version name {version!r}")


def resolve(models_dir: str | os.PathLike[str], version: str = CURRENT) -> Path:
    """The bundle folder for ``version`` (default: current), inside ``models_dir`` only."""
    root = Path(models_dir).resolve()
    if not root.is_dir():
        raise BundleError(f"models directory {str(models_dir)!r} does not exist: train a model first")
    if version == CURRENT:
        target = current_version(root)
        if target is None:
            raise BundleError(f"no current model in {str(models_dir)!r}: train a model first")
        version = target
    _check_version_name(version)
    folder = (root / version).resolve()
    if folder.parent != root:
        raise BundleError(f"bundle {version!r} is outside the models directory {str(root)!r}")
    if not (folder / MANIFEST).is_file():
        raise BundleError(f"bundle {version!r} has no {MANIFEST} in {str(models_dir)!r}")
    return folder


def read_manifest(folder: Path) -> dict[str, Any]:
    """The parsed manifest of a bundle folder, with its format version checked."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{folder / MANIFEST}: unreadable manifest: {exc}") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{folder / MANIFEST}: manifest must be a JSON object")
    found = manifest.get("format_version")
    if found != FORMAT_VERSION:
        raise BundleError(
            f"{folder / MANIFEST}: unknown bundle format version {found!r} "
            f"(this recommender reads version {FORMAT_VERSION})"
        )
    if not isinstance(manifest.get("files"), dict):
        raise BundleError(f"{folder / MANIFEST}: manifest lists no files")
    return manifest


def verify(folder: Path, manifest: dict[str, Any]) -> None:
    """Check that every listed file exists with its recorded size and sha256."""
    for name, info in sorted(manifest["files"].items()):
        if "/" in name or name.startswith("."):
            raise BundleError(f"{folder / MANIFEST}: bad file name {name!r}")
        path = folder / name
        if not path.is_file():
            raise BundleError(f"{path}: file listed in the manifest is missing")
        if path.stat().st_size != info.get("bytes") or _sha256(path) != info.get("sha256"):
            raise BundleError(f"{path}: checksum mismatch: the bundle is damaged or was modified")


@dataclass
class LoadedBundle:
    """The raw parts of a verified bundle; :class:`recommender.Recommender` wraps them."""

    folder: Path
    manifest: dict[str, Any]
    vectorizer: Any
    arrays: dict[str, np.ndarray]
    ids: list[str]

    def json_file(self, name: str) -> Any:
        """A JSON side file of the bundle (listed and verified in the manifest)."""
        if name not in self.manifest["files"]:
            return None
        return json.loads((self.folder / name).read_text(encoding="utf-8"))


def load_bundle(models_dir: str | os.PathLike[str], version: str = CURRENT, *, mmap: bool = True) -> LoadedBundle:
    """Load and verify a bundle; arrays are memory-mapped read-only by default."""
    folder = resolve(models_dir, version)
    manifest = read_manifest(folder)
    verify(folder, manifest)
    mode: Literal["r"] | None = "r" if mmap else None
    arrays: dict[str, np.ndarray] = {}
    for name in manifest.get("arrays", _ARRAYS):
        try:
            arrays[name] = np.load(folder / f"{name}.npy", mmap_mode=mode, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise BundleError(f"{folder / (name + '.npy')}: unreadable array: {exc}") from None
    try:
        vectorizer = joblib.load(folder / "vectorizer.joblib")
        ids = (folder / "ids.txt").read_text(encoding="utf-8").split("\n")
    except Exception as exc:
        raise BundleError(f"{folder}: cannot load bundle: {exc}") from None
    if len(ids) != manifest.get("articles"):
        raise BundleError(f"{folder / 'ids.txt'}: holds {len(ids)} ids, manifest says {manifest.get('articles')}")
    return LoadedBundle(folder, manifest, vectorizer, arrays, ids)


def iter_files(folder: Path) -> Iterable[Path]:
    """Every file of a bundle folder (for size reports)."""
    return (p for p in folder.iterdir() if p.is_file())
