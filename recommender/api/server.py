"""Running the service: uvicorn with the request-head limits, and a supervisor that passes SIGHUP on.

uvicorn's multi-process supervisor restarts every worker on SIGHUP (dropping
requests, and giving up with "was not ready in time" under load); here the
supervisor signals each worker instead, and each worker reloads its model.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator

import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.supervisors.multiprocess import Multiprocess

from .protocol import LimitedHttpToolsProtocol
from .settings import Settings

logger = logging.getLogger("uvicorn.error")


class ReloadingSupervisor(Multiprocess):
    """uvicorn's supervisor, except that SIGHUP asks every worker to reload instead of replacing it."""

    def handle_hup(self) -> None:
        logger.info("Received SIGHUP, asking every worker to reload the model.")
        for process in self.processes:
            if process.pid is not None and process.process.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGHUP)


def log_config() -> dict[str, object]:
    """uvicorn's logging, plus the library's own log (model loads, change-log trouble) on stderr.

    Each line carries the process id: with several workers the log then says
    which worker loaded which model, and when.
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["recommender"] = {
        "()": "uvicorn.logging.DefaultFormatter",
        "fmt": "%(levelprefix)s [%(process)d] %(message)s",
    }
    config["handlers"]["recommender"] = {
        "formatter": "recommender",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["recommender"] = {"handlers": ["recommender"], "level": "INFO", "propagate": False}
    return config


@contextlib.contextmanager
def metrics_folder(workers: int) -> Iterator[None]:
    """With several workers, a fresh PROMETHEUS_MULTIPROC_DIR for their shared counts, removed on exit."""
    if workers <= 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    folder = tempfile.mkdtemp(prefix="recommender-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    try:
        yield
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(folder, ignore_errors=True)


def serve(settings: Settings, *, host: str, port: int, workers: int, access_log: bool) -> int:
    """Serve until SIGTERM or SIGINT; the exit status (3 when the app could not start)."""
    config = uvicorn.Config(
        "recommender.api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http=functools.partial(  # type: ignore[arg-type]
            LimitedHttpToolsProtocol,
            max_header_bytes=settings.max_header_bytes,
            header_timeout=settings.header_timeout,
        ),
        access_log=access_log,
        log_config=log_config(),
        log_level="info",
        timeout_graceful_shutdown=5,
    )
    with metrics_folder(workers):
        if workers > 1:
            sock = config.bind_socket()
            try:
                ReloadingSupervisor(config, sockets=[sock]).run()
            finally:
                sock.close()
            return 0
        server = uvicorn.Server(config)
        server.run()
        return 0 if server.started else 3
