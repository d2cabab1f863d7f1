"""``mirrorline replay``: a recording streamed to a real server as each platform would."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.service.audio import stereo_wav
from tests.service.conftest import REPO


@pytest.mark.parametrize(
    ("protocol", "agent_channel"), [("twilio", 1), ("audiohook", 0), ("raw", 1)]
)
def test_replay_streams_a_file_that_becomes_an_analysis(
    make_server: Any, tmp_path: Path, protocol: str, agent_channel: int
) -> None:
    server = make_server({"MIRRORLINE_API_KEYS": "rk"})
    call = tmp_path / "my call.wav"
    call.write_bytes(stereo_wav(8.0, seed=4))
    out = subprocess.run(
        [sys.executable, "-m", "service.cli", "replay", str(call),
         "--to", server.url.replace("http://", "ws://"), "--protocol", protocol,
         "--speed", "max", "--token", "rk", "--agent-channel", str(agent_channel)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"id": "my-call", "close_code": 1000, "close_reason": ""}
    with server.client(headers={"X-API-Key": "rk"}) as client:
        deadline = time.monotonic() + 60
        while (stream := client.get("/v1/streams/my-call").json())["analysis_status"] not in (
            "completed",
            "failed",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert stream["protocol"] == protocol and stream["analysis_status"] == "completed"
        assert stream["audio_s"] == pytest.approx(8.0, abs=0.05)
        report = client.get(f"/v1/analyses/{stream['analysis_id']}").json()["report"]
    # the agent is the file's agent channel, wherever the protocol put it
    agent = report["roles"]["agent_channel"]
    assert stream["agent_channel"] == agent
    assert stream["channels"][agent] in {"outbound", "internal", "channel 1", "channel 0"}
    if protocol == "raw":
        assert agent == agent_channel


def test_replay_says_why_a_server_refused(make_server: Any, tmp_path: Path) -> None:
    server = make_server({"MIRRORLINE_API_KEYS": "rk"})
    call = tmp_path / "c.wav"
    call.write_bytes(stereo_wav(2.0))
    out = subprocess.run(
        [sys.executable, "-m", "service.cli", "replay", str(call), "--to",
         server.url.replace("http://", "ws://"), "--protocol", "raw", "--speed", "max"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert last["close_code"] == 4401 and last["close_reason"].startswith("auth.missing")
