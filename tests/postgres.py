"""A throwaway PostgreSQL cluster for the tests that need a real server (the sql source, the shared change log).

The cluster lives in a temporary folder, is started with Debian's
``initdb``/``pg_ctl`` as an unprivileged user (PostgreSQL refuses root), listens
on 127.0.0.1 on a free port with password authentication, and is stopped by
``pg_ctl stop -m immediate`` when the module's tests are done. Where the
binaries are missing its tests skip, or fail when CI is set.

``conftest.py`` makes the fixture ``postgres_server`` available to every test module.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .servers import free_port

PASSWORD = "s3cret-pw"  # the cluster's password: it must never appear in a message
_databases = itertools.count(1)


# The cluster ------------------------------------------------------------------


@dataclass
class Server:
    port: int
    folder: Path

    def url(self, password: str = PASSWORD) -> str:
        return f"postgresql://postgres:{password}@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """The URL of a new, empty database of the cluster (one per test: no test sees another's tables)."""
        name = f"test_{os.getpid()}_{next(_databases)}"
        with self.connect() as db:
            db.execute(f"CREATE DATABASE {name}")
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.port}/{name}"

    def connect(self) -> Any:
        import psycopg

        # A lock held by a reader that was not closed makes setup fail after 10 s instead of hanging.
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            password=PASSWORD,
            dbname="postgres",
            autocommit=True,
            options="-c lock_timeout=10000",
        )


def _postgres_binaries() -> Path | None:
    """The bin folder of the newest Debian PostgreSQL, or of the initdb on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path and shutil.which("pg_ctl") else None


@pytest.fixture(scope="module")
def postgres_server(request: pytest.FixtureRequest) -> Server:
    binaries = _postgres_binaries()
    if binaries is None:
        reason = "PostgreSQL's initdb and pg_ctl are not installed (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}")
        pytest.skip(reason)
    # Under /tmp, not pytest's tmp_path: the unprivileged user must reach it and the socket path must be short.
    folder = Path(tempfile.mkdtemp(prefix="recommender-pg-"))
    (folder / "pw").write_text(PASSWORD)
    as_user: list[str] = []
    if os.geteuid() == 0:
        for path in (folder, folder / "pw"):
            shutil.chown(path, "nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
    data, port = folder / "data", free_port()

    def run(*command: str) -> None:
        done = subprocess.run([*as_user, *command], cwd=folder, capture_output=True, text=True, timeout=60)
        if done.returncode:
            log = (folder / "log").read_text(errors="replace")[-2000:] if (folder / "log").exists() else ""
            pytest.fail(f"{Path(command[0]).name} failed: {done.stderr.strip()}\n{log}")

    def stop() -> None:
        subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "stop", "-m", "immediate"],
                       cwd=folder, capture_output=True, timeout=60)  # fmt: skip
        pid_file = data / "postmaster.pid"
        if pid_file.exists():  # pg_ctl could not stop it: end the postmaster by its PID
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)

    request.addfinalizer(stop)
    run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--pwfile", str(folder / "pw"),
        "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync")  # fmt: skip
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c full_page_writes=off"
    run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-t", "60", "-o", options, "start")
    return Server(port, folder)
