"""Endpoints and bad inputs through the real HTTP stack (uvicorn subprocess, httpx)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.service.audio import (
    call_samples,
    long_flac,
    mono_wav,
    stereo_wav,
    three_channel_wav,
    truncated_wav,
    wav_bytes,
)
from tests.service.conftest import REPO, Server

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "code"}
SAMPLE = REPO / "samples" / "ami_two_party_8k_ulaw.wav"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert body["code"] == code, body
    assert response.headers.get("x-request-id")
    return body


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def test_health_ready_metrics_docs(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {
        "status": "ready",
        "checks": {"database": "ok", "queue": "ok"},
    }
    spec = client.get("/openapi.json").json()
    for path in ("/v1/analyze", "/v1/analyses", "/v1/analyses/{job_id}", "/metrics"):
        assert path in spec["paths"]
    assert "multipart/form-data" in spec["paths"]["/v1/analyze"]["post"]["requestBody"]["content"]
    assert "swagger" in client.get("/docs").text.lower()
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "mirrorline_http_requests_total" in metrics.text
    assert 'mirrorline_jobs{status="queued"}' in metrics.text
    # the embedded queue: nothing waiting, this server's analysis processes
    assert "mirrorline_queue_depth 0.0" in metrics.text
    assert "mirrorline_queue_oldest_age_seconds 0.0" in metrics.text
    assert "mirrorline_workers 1.0" in metrics.text


def test_request_id_echoed_or_made(client: httpx.Client) -> None:
    mine = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] not in ("", "bad id with spaces")
    assert client.get("/nowhere").headers["x-request-id"]


def test_request_id_on_every_log_line(server: Server, client: httpx.Client) -> None:
    client.get("/healthz", headers={"X-Request-ID": "logged-id-42"})
    time.sleep(0.2)
    lines = [json.loads(x) for x in server.log().splitlines() if x.startswith("{")]
    assert lines, server.log()
    assert all("request_id" in line for line in lines)
    assert any(line["request_id"] == "logged-id-42" and line.get("status") == 200 for line in lines)


def test_sync_analyze_returns_the_report(client: httpx.Client) -> None:
    response = client.post(
        "/v1/analyze",
        files={"file": ("call.wav", stereo_wav(8.0), "audio/wav")},
        data={"agent_channel": "1", "window_s": "4", "hop_s": "2"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["source"] == "call.wav"
    assert report["audio"]["channels"] == 2
    assert report["audio"]["analysis_sample_rate_hz"] == 8000
    assert report["roles"] == {"agent_channel": 1, "customer_channel": 0}
    assert report["config"]["window_s"] == 4.0
    # channel 1 carries the 210 Hz voice: it is the agent now
    assert 190 < report["speakers"]["agent"]["pitch"]["median_hz"] < 230
    assert 105 < report["speakers"]["customer"]["pitch"]["median_hz"] < 135


@pytest.mark.skipif(not SAMPLE.exists(), reason="samples/ not present")
def test_sync_report_equals_cli_report_on_real_sample(client: httpx.Client) -> None:
    response = client.post(
        "/v1/analyze", files={"file": (SAMPLE.name, SAMPLE.read_bytes(), "audio/wav")}
    )
    assert response.status_code == 200, response.text
    cli = subprocess.run(
        [sys.executable, "-m", "service.cli", "analyze", str(SAMPLE), "--no-progress"],
        cwd=REPO,
        capture_output=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert response.json() == json.loads(cli.stdout)


def _noise(n: int) -> bytes:
    return np.random.default_rng(3).integers(0, 256, n, dtype=np.uint8).tobytes()


BAD_INPUTS = [
    ("mono", mono_wav(), 422, "audio.not_stereo"),
    ("three_channels", three_channel_wav(), 422, "audio.too_many_channels"),
    ("random_bytes", _noise(50_000), 415, "audio.undecodable"),
    ("empty", b"", 422, "audio.empty"),
    ("text", b"hello, this is not a recording\n" * 100, 415, "audio.undecodable"),
    ("truncated_wav", truncated_wav(), 422, "audio.truncated"),
    ("too_short", wav_bytes(call_samples(2.0)[:2000]), 422, "audio.too_short"),
]


@pytest.mark.parametrize(
    ("name", "payload", "status", "code"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_audio_sync(
    client: httpx.Client, name: str, payload: bytes, status: int, code: str
) -> None:
    response = client.post("/v1/analyze", files={"file": (f"{name}.wav", payload)})
    assert_problem(response, status, code)
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("data", "bad_field", "code"),
    [
        ({"agent_channel": "2"}, "agent_channel", "config.invalid"),
        ({"window_s": "-1"}, "window_s", "config.invalid"),
        ({"window_s": "10", "hop_s": "20"}, "hop_s", "config.invalid"),
        ({"hop_s": "fast"}, "hop_s", "config.invalid"),
        ({"colour": "blue"}, "colour", "request.invalid"),
    ],
)
def test_bad_parameters_are_422(
    client: httpx.Client, data: dict[str, str], bad_field: str, code: str
) -> None:
    response = client.post("/v1/analyze", files={"file": ("call.wav", stereo_wav(4.0))}, data=data)
    body = assert_problem(response, 422, code)
    assert bad_field in str(body["detail"])


def test_transport_errors(client: httpx.Client) -> None:
    assert_problem(
        client.post("/v1/analyze", data={"agent_channel": "0"}, files={"other": ("x.txt", b"x")}),
        422,
        "upload.missing_file",
    )
    assert_problem(
        client.post("/v1/analyze", content=b"{}", headers={"content-type": "application/json"}),
        415,
        "upload.unsupported_media_type",
    )
    assert_problem(client.get("/nowhere"), 404, "not_found")
    assert_problem(client.put("/v1/analyze"), 405, "method_not_allowed")
    assert_problem(client.get("/v1/analyses", params={"limit": "0"}), 422, "request.invalid")
    assert client.get("/healthz").status_code == 200


def test_oversized_upload_is_refused_by_content_length(client: httpx.Client) -> None:
    big = b"\0" * 3_000_000  # the server takes 2 MB
    response = client.post("/v1/analyze", files={"file": ("big.wav", big)})
    assert_problem(response, 413, "upload.too_large")
    assert client.get("/healthz").status_code == 200


def test_oversized_streamed_upload_is_cut_off(server: Server, client: httpx.Client) -> None:
    """No Content-Length (chunked): the server counts bytes as they arrive and stops at 2 MB."""
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.wav"\r\n\r\n'
        for _ in range(400):  # up to 40 MB, far more than the server may read
            sent += 100_000
            yield b"\1" * 100_000
        yield b"\r\n--b--\r\n"

    try:
        response = client.post(
            "/v1/analyze",
            content=body(),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
    except httpx.HTTPError:
        pass  # the server may close the connection while we are still sending
    else:
        assert_problem(response, 413, "upload.too_large")
    assert sent < 20_000_000  # it stopped us early (Connection: close), not after 40 MB
    assert client.get("/healthz").status_code == 200
    uploads = list((server.data_dir / "uploads").iterdir())
    assert uploads == []  # the partial upload was deleted


def test_sync_endpoint_sends_long_calls_to_jobs(client: httpx.Client) -> None:
    response = client.post("/v1/analyze", files={"file": ("long.flac", long_flac(90.0))})
    body = assert_problem(response, 413, "sync.too_long")
    assert "/v1/analyses" in str(body["detail"])


def test_concurrent_requests_are_all_answered(client: httpx.Client) -> None:
    import concurrent.futures

    payload = stereo_wav(6.0)

    def one(i: int) -> int:
        with httpx.Client(base_url=str(client.base_url), timeout=120) as c:
            if i % 2:
                return c.get("/healthz").status_code
            return c.post("/v1/analyze", files={"file": (f"c{i}.wav", payload)}).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(one, range(8)))
    assert statuses == [200] * 8


def test_upload_dir_is_empty_after_sync_requests(server: Server, client: httpx.Client) -> None:
    client.post("/v1/analyze", files={"file": ("call.wav", stereo_wav(4.0))})
    assert list((server.data_dir / "uploads").iterdir()) == []
