"""The service's side of the live index: logging writes, following the log, compacting on a schedule.

Every worker appends the writes it receives to the shared change log and
follows the log: each applies every change, its own and the other workers',
in sequence order, so all of them serve the same articles.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .. import checkpoint
from ..changelog import ChangeLogLike, Op, open_log
from ..recommend import Recommender
from .state import ModelHolder

log = logging.getLogger("recommender.api")

Record = dict[str, Any]
ALREADY_RUNNING = "a compaction is already running"


class LogWriter:
    """Appends to the change log from one thread of its own.

    An append returns once the change is on disk (SQLite commits with
    ``synchronous=FULL``, PostgreSQL flushes its WAL before answering the
    COMMIT), which takes an fsync: it runs in a dedicated thread so that the
    event loop keeps answering, and always the same thread, because an SQLite
    connection belongs to the thread that opened it. The thread starts with
    the first write and stops with ``close``. ``log_url``: the log is in that
    database instead of the models directory.
    """

    def __init__(self, models_dir: Path, log_url: str | None = None) -> None:
        self.models_dir = models_dir
        self.log_url = log_url
        self._executor: ThreadPoolExecutor | None = None
        self._log: ChangeLogLike | None = None

    def _pool(self) -> tuple[ThreadPoolExecutor, ChangeLogLike]:
        if self._executor is None or self._log is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="changelog")
            self._log = open_log(self.models_dir, self.log_url)
        return self._executor, self._log

    async def append(self, op: Op, article_id: str, record: Record | None = None) -> int:
        """Log one change durably; its sequence number."""
        executor, changes = self._pool()
        return await asyncio.get_running_loop().run_in_executor(executor, changes.append, op, article_id, record)

    async def append_many(self, batch: Sequence[tuple[Op, str, Record | None]]) -> list[int]:
        """Log several changes in one transaction (all or none); their sequence numbers."""
        executor, changes = self._pool()
        return await asyncio.get_running_loop().run_in_executor(executor, changes.append_many, batch)

    async def close(self) -> None:
        """Close the log's connection in its thread and stop the thread."""
        executor, changes = self._executor, self._log
        self._executor = self._log = None
        if executor is not None and changes is not None:
            await asyncio.get_running_loop().run_in_executor(executor, changes.close)
            executor.shutdown(wait=True)


class Checkpointer:
    """Writes a checkpoint of the served model's live changes every ``every`` changes (0: never).

    The copy is taken on the event loop, between changes, and written from a
    thread; every worker tries, the first one writes (the others find the
    checkpoint there or the lock held).
    """

    def __init__(self, models_dir: Path, every: int) -> None:
        self.models_dir = models_dir
        self.every = every
        self._bundle: str | None = None
        self._since = 0
        self._writing: asyncio.Task[Path | None] | None = None

    def tick(self, rec: Recommender | None) -> None:
        if self.every <= 0 or rec is None or rec.live is None:
            return
        if self._writing is not None and not self._writing.done():
            return
        if rec.base_version != self._bundle:
            self._bundle, self._since = rec.base_version, checkpoint.position(self.models_dir, rec)
        if rec.log_seq - self._since < self.every:
            return
        captured = checkpoint.capture(rec)
        self._since = rec.log_seq
        if captured is not None:
            self._writing = asyncio.get_running_loop().create_task(self._write(captured))

    async def _write(self, captured: Any) -> Path | None:
        try:
            return await asyncio.to_thread(checkpoint.write_checkpoint, captured, self.models_dir)
        except Exception:  # a checkpoint is a cache of the log: the service goes on without it
            log.exception("checkpoint not written")
            return None


async def follow_log(
    holder: ModelHolder, interval: float, *, watching: bool, checkpoints: Checkpointer | None = None
) -> None:
    """Apply the log's new changes to the served model, checking every ``interval`` seconds.

    Runs on the event loop, like the query routes, so a change is never
    applied while a request reads the model. While ``models/current`` has
    moved (a compaction made a new bundle current) and the model watcher is
    on, it waits for the watcher to load the new bundle: the old one may
    miss changes that the compaction removed from the log.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            if watching and holder.link_changed():
                continue
            if holder.behind():
                holder.sync()
            if checkpoints is not None:
                checkpoints.tick(holder.current)
        except Exception:  # the follower must outlive any surprise; the next tick tries again
            log.exception("change log follower: catching up failed")


async def compact_every(models_dir: Path, interval: float, log_url: str | None = None) -> None:
    """Run ``recommender compact`` every ``interval`` seconds (one at a time across workers: it locks)."""
    command = [sys.executable, "-m", "recommender", "compact", "--quiet", "--models-dir", os.fspath(models_dir)]
    # The URL reaches the command through its environment (a command line is visible to every user).
    env = {**os.environ, "RECOMMENDER_LOG_URL": log_url} if log_url else None
    while True:
        await asyncio.sleep(interval)
        try:
            await _compact_once(command, env)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("compaction: could not run %s", " ".join(command))


async def _compact_once(command: list[str], env: dict[str, str] | None = None) -> None:
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await process.communicate()
    except asyncio.CancelledError:
        # Shutting down: a compaction cut short leaves no half bundle (bundles are renamed into place).
        if process.returncode is None:
            process.terminate()
            await process.wait()
        raise
    said = (err or out).decode("utf-8", "replace").strip()
    if process.returncode == 0:
        log.info("compaction: %s", (out.decode("utf-8", "replace").strip() or "done"))
    elif ALREADY_RUNNING in said:
        log.info("compaction: %s, not started", ALREADY_RUNNING)
    else:
        log.warning("compaction failed (exit %s): %s", process.returncode, said)
