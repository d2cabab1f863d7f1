"""Without the verbal extra, asking for verbal mirroring fails at once with the install
command: the CLI exits 2 (``verbal.unavailable``), the API answers 422 with that code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.service.conftest import Server

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "ami_two_party_8k_ulaw.wav"
INSTALL = "pip install 'mirrorline[verbal]'"


def _without_recogniser(tmp: Path) -> str:
    """A PYTHONPATH on which ``import pocketsphinx`` fails as it does when not installed."""
    shadow = tmp / "shadow" / "pocketsphinx"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no module named pocketsphinx')\n")
    return os.pathsep.join([str(tmp / "shadow"), str(REPO)])


def test_cli_verbal_without_the_extra_names_the_install(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": _without_recogniser(tmp_path)}
    out_file = tmp_path / "report.json"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "service.cli",
            "analyze",
            str(SAMPLE),
            "--verbal",
            "-o",
            str(out_file),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: verbal.unavailable: "), out.stderr
    assert INSTALL in lines[0]
    assert not out_file.exists()


def test_api_verbal_without_the_extra_is_422(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", {"PYTHONPATH": _without_recogniser(tmp_path)})
    server.start()
    try:
        with server.client() as client:
            for path in ("/v1/analyze", "/v1/analyses"):
                r = client.post(
                    path,
                    files={"file": ("call.wav", SAMPLE.read_bytes(), "audio/wav")},
                    data={"verbal": "true"},
                )
                assert r.status_code == 422, r.text
                body = r.json()
                assert body["code"] == "verbal.unavailable" and INSTALL in body["detail"]
            # without verbal the same server analyses the call
            r = client.post(
                "/v1/analyze", files={"file": ("call.wav", SAMPLE.read_bytes(), "audio/wav")}
            )
            assert r.status_code == 200 and r.json()["verbal"] is None
    finally:
        server.stop()
