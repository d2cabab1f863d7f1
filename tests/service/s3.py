"""A real S3-compatible HTTP server for tests: moto's (``moto_server``, the dev extra), as a
process on a free loopback port, with one bucket. Without moto a test skips, and fails under
``CI=true`` (CI installs the dev extra: ``.ci/run``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest


def require_moto() -> str:
    """The ``moto_server`` command; skip (or fail in CI) without it or boto3."""
    found = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    found = found or shutil.which("moto_server")
    message = None
    if found is None or importlib.util.find_spec("boto3") is None:
        message = "moto's S3 server or boto3 is not installed (pip install -e '.[dev]')"
    if message is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI must run these tests")
        pytest.skip(message)
    assert found is not None
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class S3Server:
    """``moto_server`` on 127.0.0.1:``port``; ``env`` is what a node needs to reach it the
    standard AWS way (docs/deploy.md)."""

    def __init__(self, log_path: Path, bucket: str = "mirrorline-audio") -> None:
        self.command = require_moto()
        self.log_path = log_path
        self.bucket = bucket
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
        }

    def start(self, timeout_s: float = 30.0) -> S3Server:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.command, "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {self.log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(self.endpoint, timeout=1)
                self.client().create_bucket(Bucket=self.bucket)
                return self
            time.sleep(0.1)
        raise RuntimeError(f"moto_server not up after {timeout_s} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def client(self) -> Any:
        import boto3

        env = self.env
        return boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_REGION"],
        ).client("s3", endpoint_url=self.endpoint)

    def keys(self) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))
