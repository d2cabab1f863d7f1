"""A real PostgreSQL server for tests and benchmarks, from the Debian ``postgresql`` package.

``initdb`` into a temporary folder, then ``pg_ctl start`` on a free loopback port (as the
``postgres`` user when running as root: PostgreSQL refuses to run as root). Without the
package a test skips, and fails under ``CI=true`` (CI installs it: ``.ci/run``).
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def require_postgres() -> tuple[str, str]:
    """Paths of ``initdb`` and ``pg_ctl``; skip (or fail in CI) without them."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    message = None
    if initdb is None or pg_ctl is None:
        message = "PostgreSQL is not installed (apt-get install postgresql)"
    elif not all(importlib.util.find_spec(m) for m in ("psycopg", "procrastinate")):
        message = "the postgres extra is not installed (pip install -e '.[dev]')"
    if message is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI must run these tests")
        pytest.skip(message)
    assert initdb is not None and pg_ctl is not None
    return initdb, pg_ctl


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Postgres:
    """One PostgreSQL cluster in ``folder``, listening on 127.0.0.1:``port``."""

    def __init__(self, folder: Path) -> None:
        self.initdb, self.pg_ctl = require_postgres()
        self.folder = folder
        self.data = folder / "data"
        self.port = _free_port()
        self.user: list[str] = []
        if os.geteuid() == 0:  # postgres refuses root: run it as the package's own user,
            # in a folder of its own that user can reach (pytest's are root's alone)
            self.user = ["runuser", "-u", "postgres", "--"]
            self.folder = Path(tempfile.mkdtemp(prefix="mirrorline-pg-"))
            self.data = self.folder / "data"
            shutil.chown(self.folder, "postgres")
        self._run(
            self.initdb, "-D", str(self.data), "-A", "trust", "-U", "mirrorline", "-E", "UTF8"
        )

    @property
    def url(self) -> str:
        return f"postgresql://mirrorline@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self.user, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")

    def start(self) -> Postgres:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            self.pg_ctl,
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "start",
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        with contextlib.suppress(RuntimeError):
            self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def restart(self, down_s: float = 0.0) -> None:
        """Stop (connections are cut), stay down ``down_s``, start again."""
        self.stop("fast")
        time.sleep(down_s)
        self.start()

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        return self.url.rsplit("/", 1)[0] + f"/{name}"
