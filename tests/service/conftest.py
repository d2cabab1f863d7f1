"""Service tests run the real stack: ``python -m service.cli serve`` in a subprocess, httpx.

Each server gets its own data directory and free port; it runs in its own session so the
test can stop it together with its worker processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One ``mirrorline serve`` process (plus its workers) on 127.0.0.1."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.extra_env = dict(env or {})
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MIRRORLINE_")}
        env.update(
            {
                "PYTHONPATH": str(REPO),
                "MIRRORLINE_DATA_DIR": str(self.data_dir),
                "MIRRORLINE_WORKERS": "1",
                "MIRRORLINE_LOG_LEVEL": "INFO",
            }
        )
        env.update(self.extra_env)
        return env

    def spawn(self, *cli_args: str) -> None:
        """Start ``mirrorline CLI_ARGS`` as users do, its output appended to the log."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service.cli", *cli_args],
                cwd=REPO,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start(self, *, ready: bool = True, timeout_s: float = 60.0) -> Server:
        self.port = free_port()
        self.spawn("serve", "--port", str(self.port))
        self.wait("/readyz" if ready else "/healthz", timeout_s=timeout_s)
        return self

    def wait(self, path: str, *, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"server not up after {timeout_s} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, *, timeout_s: float = 30.0) -> None:
        """Signal the server's process group (server and its workers) and wait."""
        if self.process is None or self.process.poll() is not None:
            self._reap_group()
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._reap_group()

    def _reap_group(self) -> None:
        """Kill whatever is left in the group (workers orphaned by a SIGKILL)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 60.0), **kwargs)


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Any]:
    """Factory: ``make_server(env={...}, data_dir=...)`` -> a started ``Server``."""
    servers: list[Server] = []

    def make(
        env: dict[str, str] | None = None,
        *,
        data_dir: Path | None = None,
        start: bool = True,
        ready: bool = True,
    ) -> Server:
        server = Server(data_dir or tmp_path / f"data{len(servers)}", env)
        servers.append(server)
        if start:
            server.start(ready=ready)
        return server

    yield make
    for server in servers:
        server.stop()


WEBHOOK_SECRET = "whsec_" + "c2VjcmV0LWZvci10ZXN0cy0xMjM0NTY3ODkwYWJjZGVm"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A shared server with small limits: 2 MB uploads, 60 s sync calls, a webhook secret."""
    base = tmp_path_factory.mktemp("svc")
    srv = Server(
        base / "data",
        {
            "MIRRORLINE_MAX_UPLOAD_MB": "2",
            "MIRRORLINE_SYNC_MAX_DURATION_S": "60",
            "MIRRORLINE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            # the test webhook receiver listens on 127.0.0.1
            "MIRRORLINE_WEBHOOK_ALLOW_PRIVATE": "true",
            "MIRRORLINE_WEBHOOK_BACKOFF_S": "0.2",
            "MIRRORLINE_WEBHOOK_TIMEOUT_S": "2",
        },
    )
    srv.start()
    yield srv
    srv.stop()
