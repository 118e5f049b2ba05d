"""Bundles in shared storage: published to, and fetched from, any fsspec URL.

A store at ``URL`` (``s3://bucket/models``, ``gs://...``, ``file:///srv/models``,
``memory://...`` in tests) is laid out like a models directory: one folder
``<URL>/<version>/`` per bundle, the same files and ``manifest.json``. Object
stores have no symbolic links, so the current version is named by a small text
file, ``<URL>/CURRENT``.

A training builds its bundle in a local temporary folder (as for a local
models directory), uploads it file by file, the manifest last, and only then
switches ``CURRENT``: written as ``CURRENT.tmp-<random>`` and moved over
``CURRENT``. What that move is worth depends on the store: on a file system
(``file://``, NFS) it is a rename, atomic; on object stores (S3, GCS, Azure)
each object is replaced whole by one request (a reader gets the old or the new
content, never a mix) and the move is a server-side copy, so readers see the
old or the new version name. A reader also refuses a name that is not a
version, and a version without a manifest.

A service replica downloads the current bundle into a local cache folder,
which then plays the part of its models directory: every file is checked
against the manifest's sha256 as it arrives (a damaged file is refused with
the message of a local load, naming the remote file), then the bundle is loaded
from the cache, memory-mapped and verified like any local bundle.

``fsspec`` is an optional dependency (``pip install 'recommender[remote]'``),
imported only when a URL is used; a store's own backend (``s3fs``, ``gcsfs``,
``adlfs``) is the user's to install.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .bundle import (
    MANIFEST,
    _check_version_name,
    prune,
    read_manifest,
    remove_stale_temporaries,
    set_current,
    to_prune,
    verify,
)
from .errors import BundleError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

POINTER = "CURRENT"
EXTRA = "recommender[remote]"
# A scheme ('s3://', 'file://') or a chain of them ('simplecache::s3://').
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*(://|::)")


def is_url(location: str | os.PathLike[str]) -> bool:
    """True when ``location`` is a URL (``scheme://...``) rather than a local path."""
    return isinstance(location, str) and _URL.match(location) is not None


def default_cache_dir(url: str) -> Path:
    """Where a replica keeps the bundles of ``url``: ``$XDG_CACHE_HOME/recommender/<digest of the URL>``
    (``~/.cache/...`` by default), one folder per store."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "recommender" / hashlib.sha256(url.encode()).hexdigest()[:16]


class RemoteStore:
    """The bundles at an fsspec URL: ``<url>/<version>/`` folders and the ``CURRENT`` pointer."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.fs, self.root = _filesystem(self.url)

    def _path(self, *names: str) -> str:
        return "/".join([self.root, *names])

    def where(self, *names: str) -> str:
        """The URL of a file or folder of the store (what messages name)."""
        return "/".join([self.url, *names])

    # --- the pointer -------------------------------------------------------------------

    def current(self) -> str | None:
        """The version ``CURRENT`` names (None when there is none); BundleError if the store cannot be read."""
        try:
            text = self.fs.cat_file(self._path(POINTER))
        except FileNotFoundError:
            return None
        except Exception as exc:  # network, permissions: fsspec backends raise their own errors
            raise BundleError(f"cannot read {self.where(POINTER)}: {_reason(exc)}") from None
        return bytes(text).decode("utf-8", "replace").strip()

    def set_current(self, version: str) -> None:
        """Name ``version`` in ``CURRENT``: written beside it, then moved over it (see the module's notes)."""
        _check_version_name(version)
        if not self.fs.isfile(self._path(version, MANIFEST)):
            raise BundleError(f"no bundle {version!r} in {self.url}")
        staged = self._path(f"{POINTER}.tmp-{uuid.uuid4().hex[:12]}")
        try:
            self.fs.pipe_file(staged, (version + "\n").encode("ascii"))
            self.fs.mv(staged, self._path(POINTER))
        except Exception as exc:
            raise BundleError(f"cannot write {self.where(POINTER)}: {_reason(exc)}") from None

    # --- publishing --------------------------------------------------------------------

    def upload(self, folder: Path) -> str:
        """Copy a complete local bundle folder to ``<url>/<its name>/``, the manifest last; the URL written."""
        version = folder.name
        _check_version_name(version)
        manifest = read_manifest(folder)
        target = self._path(version)
        if self.fs.exists(self._path(version, MANIFEST)):
            raise BundleError(f"bundle {version!r} already exists in {self.url}")
        names = [*sorted(manifest["files"]), MANIFEST]
        try:
            self.fs.makedirs(target, exist_ok=True)
            for name in names:
                self.fs.put_file(str(folder / name), self._path(version, name))
        except Exception as exc:
            raise BundleError(f"cannot upload bundle {version!r} to {self.url}: {_reason(exc)}") from None
        return self.where(version)

    def versions(self) -> list[str]:
        """Complete bundle versions in the store (those with a manifest), oldest first."""
        try:
            entries = self.fs.ls(self.root or "/", detail=False)
        except FileNotFoundError:
            return []
        names = sorted(str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries)
        return [name for name in names if _is_version(name) and self.fs.isfile(self._path(name, MANIFEST))]

    def prune(self, keep: int) -> list[str]:
        """Remove all but the newest ``keep`` versions (never the current one); the versions removed."""
        doomed = to_prune(self.versions(), self.current(), keep)
        for version in doomed:
            self.fs.rm(self._path(version), recursive=True)
        return doomed

    # --- fetching ----------------------------------------------------------------------

    def fetch(self, version: str, cache_dir: Path) -> Path:
        """``<cache_dir>/<version>``, downloaded and checked first unless the cache already holds it.

        The files arrive in a temporary folder, are checked against the
        manifest (size and sha256), and the folder is renamed into place:
        a download cut short or damaged never lands in the cache. Several
        workers of one replica may download at once; the first rename wins.
        """
        _check_version_name(version)
        final = cache_dir / version
        if (final / MANIFEST).is_file():
            return final
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(cache_dir)
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-{os.getpid()}-", dir=cache_dir))
        except OSError as exc:
            raise BundleError(f"cannot write to the cache folder {str(cache_dir)!r}: {exc.strerror or exc}") from None
        try:
            self._download(version, tmp)
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / MANIFEST).is_file():  # not another worker's download landing first
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, OSError):
                raise BundleError(
                    f"cannot fetch bundle {version!r} into {str(cache_dir)!r}: {exc.strerror or exc}"
                ) from None
            raise
        return final

    def _download(self, version: str, tmp: Path) -> None:
        self._get(version, MANIFEST, tmp)
        manifest = self._translate(read_manifest, tmp, version)
        for name in sorted(manifest["files"]):
            if "/" in name or name.startswith(".") or name == MANIFEST:
                raise BundleError(f"{self.where(version, MANIFEST)}: bad file name {name!r}")
            self._get(version, name, tmp)
        self._translate(verify, tmp, version, manifest)

    def _get(self, version: str, name: str, tmp: Path) -> None:
        try:
            self.fs.get_file(self._path(version, name), str(tmp / name))
        except FileNotFoundError:
            if name == MANIFEST:
                raise BundleError(f"bundle {version!r} has no {MANIFEST} in {self.url!r}") from None
            raise BundleError(f"{self.where(version, name)}: file listed in the manifest is missing") from None
        except Exception as exc:  # the store's errors (network, permissions) and the cache's (a full disk)
            raise BundleError(f"cannot download {self.where(version, name)}: {_reason(exc)}") from None

    def _translate(self, check: Any, tmp: Path, version: str, *args: Any) -> Any:
        """Run a local check on the download; its BundleError names the remote file, not the temporary copy."""
        try:
            return check(tmp, *args)
        except BundleError as exc:
            raise BundleError(str(exc).replace(str(tmp), self.where(version))) from None


def publish_bundle(folder: Path, store: RemoteStore | str, *, keep: int = 3) -> str:
    """Upload a local bundle folder to a store (or URL), make it current there, prune old versions; its URL."""
    store = RemoteStore(store) if isinstance(store, str) else store
    where = store.upload(folder)
    store.set_current(folder.name)
    store.prune(keep)
    return where


def use_cached(cache_dir: Path, version: str, keep: int = 2) -> None:
    """Mark a fetched and loaded version as the cache's current one and drop older cached versions.

    The cache is then an ordinary models directory (``recommender info
    --models-dir CACHE`` reads it); a version still memory-mapped by a worker
    can be removed safely (its mapping outlives the files' names).
    """
    set_current(cache_dir, version)
    prune(cache_dir, keep=keep)


def _is_version(name: str) -> bool:
    try:
        _check_version_name(name)
    except BundleError:
        return False
    return name != "current"


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    try:
        import fsspec
    except ImportError:
        raise BundleError(
            f"{url!r} is a URL: bundles in shared storage need fsspec, install it with pip install '{EXTRA}'"
        ) from None
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:  # e.g. "Install s3fs to access S3"
        raise BundleError(f"cannot open {url!r}: {_reason(exc)}") from None
    return fs, str(root).rstrip("/")
