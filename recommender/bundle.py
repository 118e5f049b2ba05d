"""Versioned model bundles on disk: pure serialisation of :class:`recommender.schema.ModelParts`.

A bundle is a folder ``<models_dir>/<version>/`` holding a ``manifest.json``
beside plain arrays (``.npy``, memory-mappable), the article metadata and the
vocabulary as text: nothing is pickled. It is written into a hidden temporary
folder and renamed into place; ``<models_dir>/current`` is a symbolic link
switched atomically with ``os.replace``. Loading checks the format version and
the sha256 of every file it reads, then the arrays against the schema, and
only reads from the models directory.
"""

from __future__ import annotations

import functools
import hashlib
import json
import mmap
import os
import platform
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import BundleError
from .schema import (
    ARRAYS,
    ARTICLES_FILE,
    FORMAT_VERSION,
    IDS_FILE,
    MANIFEST,
    METADATA_FILE,
    SECTIONS_FILE,
    STOP_WORDS_FILE,
    TAGS_FILE,
    TERMS_FILE,
    ModelParts,
)

if TYPE_CHECKING:
    from .corpus import Article

CURRENT = "current"
_VERSION_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.TZ")
# Every file a bundle holds besides the manifest; the loader reads these and
# nothing else, and refuses a manifest that does not list (and so checksum) all.
BUNDLE_FILES = (
    *(f"{name}.npy" for name in ARRAYS),
    IDS_FILE,
    TERMS_FILE,
    STOP_WORDS_FILE,
    METADATA_FILE,
    SECTIONS_FILE,
    TAGS_FILE,
)
# Listed with their checksums like every file, but read and verified only on
# demand (read_records), never by load_bundle: they are as big as the corpus.
LAZY_FILES = (ARTICLES_FILE,)


def default_models_dir() -> Path:
    """``$RECOMMENDER_MODELS_DIR``, or ``models/`` in the working directory."""
    return Path(os.environ.get("RECOMMENDER_MODELS_DIR") or "models")


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks."""
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
    for name in ("numpy", "scipy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - a dependency is always installed
            found[name] = "unknown"
    return found


def new_version(digest: str, now: datetime | None = None) -> str:
    """A sortable version name: UTC time of creation and a short corpus digest."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z-{digest[:8]}"


def write_bundle(
    models_dir: str | os.PathLike[str],
    parts: ModelParts,
    *,
    make_current: bool = True,
    keep: int = 3,
    before_rename: Callable[[Path], None] | None = None,
) -> Path:
    """Write a model's parts as bundle ``parts.version``, atomically; by default make it current.

    Returns the bundle folder. ``keep`` older versions are left in place (the
    current one is never removed). ``before_rename`` is a test hook called with
    the temporary folder just before it is renamed into place.
    """
    root = Path(models_dir)
    version = parts.version
    _check_version_name(version)
    if root.exists() and not root.is_dir():
        raise BundleError(f"the models directory {str(root)!r} exists and is not a directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BundleError(f"cannot create the models directory {str(root)!r}: {exc.strerror or exc}") from None
    remove_stale_temporaries(root)
    if (root / version).exists():
        raise BundleError(f"bundle {version!r} already exists in {str(root)!r}")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-{os.getpid()}-", dir=root))
    except OSError as exc:
        raise BundleError(f"cannot write to the models directory {str(root)!r}: {exc.strerror or exc}") from None
    try:
        files: dict[str, dict[str, Any]] = {}

        def add(name: str, writer: Callable[[Path], object]) -> None:
            path = tmp / name
            writer(path)
            files[name] = {"sha256": sha256_of(path), "bytes": path.stat().st_size}

        for name, spec in ARRAYS.items():
            add(f"{name}.npy", functools.partial(_save_array, value=np.asarray(parts.arrays[name], dtype=spec.dtype)))
        add(METADATA_FILE, lambda p: p.write_bytes(bytes(parts.metadata)))
        add(IDS_FILE, functools.partial(_save_lines, lines=parts.ids))
        add(TERMS_FILE, functools.partial(_save_lines, lines=parts.terms))
        stop = {language: sorted(words) for language, words in sorted(parts.stop_words.items())}
        add(STOP_WORDS_FILE, functools.partial(_save_json, value=stop))
        add(SECTIONS_FILE, functools.partial(_save_json, value=parts.sections))
        add(TAGS_FILE, functools.partial(_save_json, value=parts.tags))
        extra: dict[str, Any] = {}
        if parts.articles is not None:
            started = time.perf_counter()
            files[ARTICLES_FILE] = _save_records(tmp / ARTICLES_FILE, parts.articles)
            if isinstance(parts.manifest.get("timings"), dict):
                seconds = round(time.perf_counter() - started, 3)
                extra["timings"] = {**parts.manifest["timings"], "articles_file": seconds}
        manifest = {
            **parts.manifest,
            **extra,
            "format_version": FORMAT_VERSION,
            "libraries": library_versions(),
            "files": files,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        _fsync_tree(tmp)
        if before_rename is not None:
            before_rename(tmp)
        final = root / version
        os.rename(tmp, final)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise BundleError(f"cannot write bundle {version!r} to {str(root)!r}: {exc.strerror or exc}") from None
        raise
    if make_current:
        set_current(root, version)
        prune(root, keep=keep)
    return final


# '.tmp-<version>-<pid>-<mkdtemp suffix>' and '.current-<pid>': what a writer
# that owns them leaves when it is killed (SIGKILL, power loss) mid-way.
_TEMPORARY = re.compile(r"\.tmp-.+-(?P<pid>[0-9]+)-[a-z0-9_]+")
_CURRENT_LINK = re.compile(r"\.current-(?P<pid>[0-9]+)")


def remove_stale_temporaries(models_dir: str | os.PathLike[str]) -> list[str]:
    """Remove the temporary folders and ``current`` links whose owning process is gone.

    A killed training leaves its ``.tmp-<version>-<pid>-*`` folder (up to
    tens of MB) and possibly a ``.current-<pid>`` link; any later writer
    removes those of processes that no longer run. Folders of a live process
    (a training in progress) and temporaries named without a pid (by older
    versions; their owner cannot be known) are left alone. Returns the names
    removed.
    """
    root = Path(models_dir)
    removed: list[str] = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for path in entries:
        folder = _TEMPORARY.fullmatch(path.name)
        link = _CURRENT_LINK.fullmatch(path.name)
        found = folder or link
        if found is None or _process_alive(int(found["pid"])):
            continue
        if folder is not None and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif link is not None and path.is_symlink():
            path.unlink(missing_ok=True)
        else:
            continue
        removed.append(path.name)
    return removed


def _process_alive(pid: int) -> bool:
    """True when a process ``pid`` exists and is not a zombie (killed, waiting to be reaped)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    except OverflowError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): signal 0 went through
    return state not in (b"Z", b"X")


def _save_lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines), encoding="utf-8")


def _save_array(path: Path, value: np.ndarray) -> None:
    np.save(path, value, allow_pickle=False)


def _save_records(path: Path, articles: Sequence[Article]) -> dict[str, Any]:
    """Write one article record per line, hashing as it goes (one json.dumps each); the file's entry.

    ASCII JSON: on 20 Newsgroups (18,846 posts, 40 MB of records) it dumps in
    0.15 s where ensure_ascii=False took 0.26 s.
    """
    from .corpus import article_record

    digest = hashlib.sha256()
    size = 0
    with open(path, "wb") as handle:
        for article in articles:
            line = (json.dumps(article_record(article)) + "\n").encode("ascii")
            digest.update(line)
            handle.write(line)
            size += len(line)
    return {"sha256": digest.hexdigest(), "bytes": size}


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
    doomed = to_prune(list_versions(root), current_version(root), keep)
    for version in doomed:
        shutil.rmtree(root / version, ignore_errors=True)
    return doomed


def to_prune(versions: Sequence[str], current: str | None, keep: int) -> list[str]:
    """Which of ``versions`` (oldest first) go so that ``keep`` remain, the current one among them."""
    others = [v for v in versions if v != current]
    return others[: max(0, len(others) - max(keep - 1, 0))]


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


def verify(folder: Path, manifest: dict[str, Any], *, skip: Sequence[str] = ()) -> None:
    """Check that every listed file (but those in ``skip``) exists with its recorded size and sha256."""
    for name, info in sorted(manifest["files"].items()):
        if "/" in name or name.startswith("."):
            raise BundleError(f"{folder / MANIFEST}: bad file name {name!r}")
        if name in skip:
            continue
        path = folder / name
        if not path.is_file():
            raise BundleError(f"{path}: file listed in the manifest is missing")
        if path.stat().st_size != info.get("bytes") or sha256_of(path) != info.get("sha256"):
            raise BundleError(f"{path}: checksum mismatch: the bundle is damaged or was modified")


def load_bundle(models_dir: str | os.PathLike[str], version: str = CURRENT, *, mmap: bool = True) -> ModelParts:
    """Load and verify a bundle's parts; arrays are memory-mapped read-only by default.

    Every file read is listed with its checksum in the manifest and verified
    first; arrays are checked against the schema (dtype, shape, index ranges)
    and the counts against each other, so a damaged or edited bundle is
    refused with a BundleError instead of failing later in a query.
    """
    folder = resolve(models_dir, version)
    manifest = read_manifest(folder)
    unlisted = [name for name in BUNDLE_FILES if name not in manifest["files"]]
    if unlisted:
        raise BundleError(f"{folder / MANIFEST}: files not listed with checksums: {', '.join(unlisted)}")
    verify(folder, manifest, skip=LAZY_FILES)
    if manifest.get("version") != folder.name:
        raise BundleError(f"{folder / MANIFEST}: version {manifest.get('version')!r} is not the folder's name")
    mode: Literal["r"] | None = "r" if mmap else None
    arrays: dict[str, np.ndarray] = {}
    for name in ARRAYS:
        try:
            arrays[name] = np.load(folder / f"{name}.npy", mmap_mode=mode, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise BundleError(f"{folder / (name + '.npy')}: unreadable array: {exc}") from None
    try:
        ids = _read_lines(folder / IDS_FILE)
        terms = _read_lines(folder / TERMS_FILE)
        stop_words = json.loads((folder / STOP_WORDS_FILE).read_text(encoding="utf-8"))
        sections = json.loads((folder / SECTIONS_FILE).read_text(encoding="utf-8"))
        tags = json.loads((folder / TAGS_FILE).read_text(encoding="utf-8"))
        metadata = _map_file(folder / METADATA_FILE) if mmap else (folder / METADATA_FILE).read_bytes()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{folder}: cannot load bundle: {exc}") from None
    if not isinstance(sections, list) or not all(isinstance(s, str) for s in sections):
        raise BundleError(f"{folder / SECTIONS_FILE}: must be a list of section names")
    if not isinstance(tags, dict):
        raise BundleError(f"{folder / TAGS_FILE}: must map tags to row lists")
    if not isinstance(stop_words, dict) or not all(
        isinstance(words, list) and all(isinstance(w, str) for w in words) for words in stop_words.values()
    ):
        raise BundleError(f"{folder / STOP_WORDS_FILE}: must map languages to lists of words")
    stop_words = {language: frozenset(words) for language, words in stop_words.items()}
    parts = ModelParts(manifest, ids, terms, stop_words, sections, tags, metadata, arrays, folder=folder)
    parts.check(str(folder))
    return parts


def _read_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return text.split("\n") if text else []


def _map_file(path: Path) -> mmap.mmap | bytes:
    """The file memory-mapped read-only (shared by every process that maps it)."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return b""
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


def log_seq(manifest: dict[str, Any]) -> int:
    """The last change-log sequence number a bundle includes (0 when absent: every change is newer)."""
    value = manifest.get("log_seq", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BundleError(f"manifest log_seq must be an integer >= 0, got {value!r}")
    return value


def read_records(folder: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The article records of a bundle folder's ``articles.jsonl``, in corpus order, checksum verified first.

    BundleError when the bundle has no such file (trained before bundles kept
    their articles), when it was damaged or modified, or when a line is not a
    JSON object.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if ARTICLES_FILE not in manifest["files"]:
        raise BundleError(f"bundle {folder.name} has no {ARTICLES_FILE}: retrain it with 'recommender train'")
    verify(folder, {**manifest, "files": {ARTICLES_FILE: manifest["files"][ARTICLES_FILE]}})
    return _records(folder / ARTICLES_FILE)


def _records(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                record = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise BundleError(f"{path}:{number}: malformed JSON: {exc}") from None
            if not isinstance(record, dict):
                raise BundleError(f"{path}:{number}: a record must be a JSON object")
            yield record
