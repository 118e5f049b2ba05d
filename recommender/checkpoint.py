"""Checkpoints of the live index: the in-memory changes of a model at one log position, on disk.

Replaying the change log folds every logged article in again, about a
millisecond each; a checkpoint saves what the folding produced (the live
rows, the lists and vectors they changed, the dead rows) so that a restart
or a new worker restores it in a fraction of a second and replays only the
changes after it. The log stays the record: a checkpoint is a cache of it,
tied to one bundle version and one log position, written atomically (a
temporary folder renamed into place) with a checksum, and ignored (the whole
log is replayed) when it is missing, damaged or of another bundle.

Layout: ``<models_dir>/live/<bundle version>+<seq>/`` holding ``arrays.npz``
and ``state.json`` (lists, counters and the checksum of ``arrays.npz``).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .bundle import sha256_of
from .rows import Growable

if TYPE_CHECKING:
    from .recommend import Recommender

log = logging.getLogger("recommender.live")

FOLDER = "live"
_ARRAYS = "arrays.npz"
_STATE = "state.json"
_FORMAT = 2
_GROWN = (
    *("section_codes", "published", "tie_key", "language_codes"),
    *("augmented", "norms", "box_rows", "box_scores", "floor", "vectors", "touched"),
)


def capture(rec: Recommender) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """A copy of ``rec``'s live changes (arrays and state) to write later; None when there are none.

    Cheap next to writing it (copies in memory): the service captures on its
    event loop, between changes, and writes from a thread.
    """
    live = rec.live
    if live is None or rec.log_seq == rec.bundle_seq:
        return None
    arrays = {name: getattr(live, name).view.copy() for name in _GROWN}
    columns, weights, offsets = live.postings.flat()
    arrays.update(
        dead=live.dead_rows.copy(),
        group_of=np.asarray(rec.facts.group_of, dtype=np.int64),
        url_of=np.asarray(rec.facts.url_of, dtype=np.int64),
        postings_columns=columns.copy(),
        postings_weights=weights.copy(),
        postings_offsets=offsets.copy(),
        metadata=np.frombuffer(b"".join(live.metadata), dtype=np.uint8),
        metadata_lengths=np.array([len(m) for m in live.metadata], dtype=np.int64),
    )
    state = {
        "format": _FORMAT,
        "bundle": rec.base_version,
        "log_id": rec.log_id,
        "log_seq": rec.log_seq,
        "n_base": live.n_base,
        "ids": rec.ids[live.n_base :],
        "live_tags": [list(tags) for tags in live.live_tags],
        "sections": list(rec.facts.sections),
        "languages": list(rec.languages),
        "changed": dict(live.changed),
        "tokens": live.tokens,
        "unknown_tokens": live.unknown_tokens,
        "next_group": live.next_group,
        "epoch": live.epoch,
    }
    return arrays, state


def write_checkpoint(
    captured: tuple[dict[str, np.ndarray], dict[str, Any]], models_dir: str | os.PathLike[str]
) -> Path | None:
    """Write a :func:`capture` as the checkpoint of its log position; None when another process is writing one.

    Older checkpoints of the same bundle, and those of bundles no longer in
    the models directory, are removed afterwards.
    """
    arrays, state = captured
    root = Path(models_dir) / FOLDER
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+b") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        target = root / f"{state['bundle']}+{state['log_seq']}"
        if target.exists():
            return target
        temporary = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=root))
        try:
            with (temporary / _ARRAYS).open("wb") as handle:
                np.savez(handle, allow_pickle=False, **arrays)
                handle.flush()
                os.fsync(handle.fileno())
            state = {**state, "arrays_sha256": sha256_of(temporary / _ARRAYS)}
            with (temporary / _STATE).open("w", encoding="utf-8") as handle:
                json.dump(state, handle, ensure_ascii=False)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        _prune(root, state["bundle"], keep=target.name, models_dir=Path(models_dir))
        return target


def _prune(root: Path, bundle: str, *, keep: str, models_dir: Path) -> None:
    """Remove the other checkpoints of ``bundle`` and those of bundles that are gone."""
    for folder in root.iterdir():
        if folder.name.startswith(".") or folder.name == keep:
            continue
        version = folder.name.partition("+")[0]
        if version == bundle or not (models_dir / version).is_dir():
            shutil.rmtree(folder, ignore_errors=True)


def newest(models_dir: str | os.PathLike[str], bundle: str, last_seq: int) -> Path | None:
    """The checkpoint of ``bundle`` at the highest position not past ``last_seq`` (the log's end)."""
    root = Path(models_dir) / FOLDER
    best: tuple[int, Path] | None = None
    if not root.is_dir():
        return None
    for folder in root.iterdir():
        version, plus, seq = folder.name.partition("+")
        if folder.name.startswith(".") or not plus or version != bundle or not seq.isdigit():
            continue
        if int(seq) <= last_seq and (best is None or int(seq) > best[0]):
            best = (int(seq), folder)
    return best[1] if best else None


def restore(rec: Recommender, folder: Path, log_id: str) -> bool:
    """Restore the checkpoint in ``folder`` into ``rec`` (fresh from its bundle); False (logged) when unusable.

    ``log_id`` is the identity of the models directory's change log: a
    checkpoint of another log (one deleted and started again) is not used.
    """
    try:
        state = json.loads((folder / _STATE).read_text(encoding="utf-8"))
        if state.get("format") != _FORMAT or state.get("bundle") != rec.base_version:
            raise ValueError(f"written for {state.get('bundle')!r}, format {state.get('format')!r}")
        if state.get("log_id") != log_id:
            raise ValueError("written for another change log")
        if sha256_of(folder / _ARRAYS) != state["arrays_sha256"]:
            raise ValueError(f"{_ARRAYS} does not match its checksum")
        with np.load(folder / _ARRAYS, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        if int(state["n_base"]) != len(rec.ids) or rec.live is not None:
            raise ValueError("the model is not the checkpoint's bundle as loaded")
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        log.warning("checkpoint %s not used (the whole log is replayed): %s", folder.name, exc)
        return False
    _install(rec, state, arrays)
    return True


def _install(rec: Recommender, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    from .live import LiveOverlay

    live = LiveOverlay(rec)
    rec.live = live
    rec.log_id = state["log_id"]
    for name in _GROWN:
        setattr(live, name, Growable(arrays[name]))
    live.rebind()
    facts = rec.facts
    n_base = live.n_base
    new_ids: list[str] = state["ids"]
    rec.ids.extend(new_ids)
    dead = set(arrays["dead"].tolist())
    for row, article_id in enumerate(rec.ids):
        if row in dead:
            if rec.index_of.get(article_id) == row:
                del rec.index_of[article_id]
        elif row >= n_base:
            rec.index_of[article_id] = row
    live.dead = dead
    live.dead_rows = arrays["dead"].astype(np.int64)
    facts.group_of[:] = arrays["group_of"].tolist()
    facts.url_of[:] = arrays["url_of"].tolist()
    facts.sections[:] = state["sections"]
    rec.languages[:] = state["languages"]
    live.live_tags = [list(tags) for tags in state["live_tags"]]
    for offset, tags in enumerate(live.live_tags):
        live.add_tags(n_base + offset, tags)
    live.postings.load(arrays["postings_columns"], arrays["postings_weights"], arrays["postings_offsets"])
    blob = arrays["metadata"].tobytes()
    ends = np.cumsum(arrays["metadata_lengths"]).tolist()
    live.metadata = [blob[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]
    live.changed = dict(state["changed"])
    live.tokens, live.unknown_tokens = int(state["tokens"]), int(state["unknown_tokens"])
    live.next_group = int(state["next_group"])
    live.epoch = int(state["epoch"])
    rec.log_seq = int(state["log_seq"])
    live.rebind()


def position(models_dir: str | os.PathLike[str], rec: Recommender) -> int:
    """The log position of the newest checkpoint of ``rec``'s bundle, else the bundle's own."""
    found = newest(models_dir, rec.base_version, rec.log_seq)
    return int(found.name.partition("+")[2]) if found is not None else rec.bundle_seq


def checkpoint_due(rec: Recommender, models_dir: str | os.PathLike[str], every: int) -> bool:
    """True when ``rec`` is ``every`` or more changes past the newest checkpoint of its bundle (or its bundle)."""
    if every <= 0 or rec.live is None:
        return False
    return rec.log_seq - position(models_dir, rec) >= every
