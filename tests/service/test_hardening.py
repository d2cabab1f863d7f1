"""Hardening regressions through the real stack (uvicorn subprocess, httpx; the CLI as a
subprocess): inputs and fields that used to crash, each answered with a clear 4xx."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.malformed import DAMAGED_WAV_HEADERS, damaged_wav, mp3_with_latin1_title
from tests.service.audio import call_samples, stereo_wav, wav_bytes
from tests.service.conftest import REPO, Server
from tests.service.test_api import assert_problem


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )


def assert_cli_error(out: subprocess.CompletedProcess[str], code: str) -> None:
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {code}: "), out.stderr


# -- 1. decoder ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(DAMAGED_WAV_HEADERS))
def test_damaged_wav_format_is_415_on_both_paths_and_exit_2(
    client: httpx.Client, tmp_path: Path, kind: str
) -> None:
    payload = damaged_wav(stereo_wav(4.0), kind)
    sync = client.post("/v1/analyze", files={"file": ("call.wav", payload)})
    assert_problem(sync, 415, "audio.undecodable")
    job = client.post("/v1/analyses", files={"file": ("call.wav", payload)})
    assert_problem(job, 415, "audio.undecodable")  # refused, not queued to fail `internal`
    path = tmp_path / "call.wav"
    path.write_bytes(payload)
    assert_cli_error(run_cli("analyze", str(path)), "audio.undecodable")


def test_mp3_with_non_utf8_tags_is_analysed(client: httpx.Client, tmp_path: Path) -> None:
    path = mp3_with_latin1_title(tmp_path / "tagged.mp3", call_samples(6.0).T, 8000)
    response = client.post("/v1/analyze", files={"file": (path.name, path.read_bytes())})
    assert response.status_code == 200, response.text
    assert response.json()["audio"]["codec"].startswith("mp3")
    out = run_cli("analyze", str(path), "--no-progress")
    assert out.returncode == 0, out.stderr


# -- 3. form fields ------------------------------------------------------------------------


def multipart(parts: list[tuple[bytes, bytes]], boundary: bytes = b"xyzzy") -> tuple[bytes, str]:
    """A raw multipart body from (Content-Disposition params, content) pairs: byte-exact,
    so tests can send what no well-behaved client would."""
    body = b"".join(
        b"--"
        + boundary
        + b"\r\nContent-Disposition: form-data; "
        + disposition
        + b"\r\n\r\n"
        + content
        + b"\r\n"
        for disposition, content in parts
    )
    body += b"--" + boundary + b"--\r\n"
    return body, f"multipart/form-data; boundary={boundary.decode()}"


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1/",
        "http://[::1",
        "http://example.com:99999/hook",
        "http://example.com:port/hook",
        "http://exa mple.com/hook",
        "http://example.com/\x00hook",
        "ftp://example.com/hook",
        "http:///hook",
        "/relative/hook",
        "http://" + "a" * 2100 + ".example/",
    ],
)
def test_bad_callback_url_is_422(client: httpx.Client, url: str) -> None:
    body, content_type = multipart(
        [
            (b'name="file"; filename="call.wav"', stereo_wav(2.0)),
            (b'name="callback_url"', url.encode()),
        ]
    )
    response = client.post("/v1/analyses", content=body, headers={"content-type": content_type})
    assert_problem(response, 422, "request.invalid")


@pytest.mark.parametrize("path", ["/v1/analyze", "/v1/analyses"])
def test_filename_with_control_bytes_is_cleaned(client: httpx.Client, path: str) -> None:
    body, content_type = multipart(
        [(b'name="file"; filename="../ca\x00ll\n.w\x01av"', stereo_wav(4.0))]
    )
    response = client.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code in (200, 202), response.text
    shown = response.json()["source" if path == "/v1/analyze" else "filename"]
    assert shown == "call.wav"


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_parameters_are_422(client: httpx.Client, value: str) -> None:
    response = client.post(
        "/v1/analyze", files={"file": ("call.wav", stereo_wav(2.0))}, data={"window_s": value}
    )
    body = assert_problem(response, 422, "config.invalid")
    assert "window_s" in str(body["detail"])


# -- 12. fake stereo -----------------------------------------------------------------------


def _warning_codes(client: httpx.Client, samples: np.ndarray) -> list[str]:
    response = client.post("/v1/analyze", files={"file": ("call.wav", wav_bytes(samples))})
    assert response.status_code == 200, response.text
    return [w["code"] for w in response.json()["warnings"] if w["code"] != "audio.narrowband"]


def test_fake_stereo_gets_one_warning(client: httpx.Client) -> None:
    call = call_samples(12.0)
    mono = call[:, 0] + call[:, 1]
    assert _warning_codes(client, np.stack([mono, mono], axis=1)) == ["channels.identical"]
    assert _warning_codes(client, np.stack([mono, 0.5 * mono], axis=1)) == ["channels.identical"]


def test_digital_silence_is_silent_channels_not_fake_stereo(client: httpx.Client) -> None:
    silent = np.zeros((8000 * 4, 2), dtype=np.float32)
    assert _warning_codes(client, silent) == ["channel.silent", "channel.silent"]
    one_side = call_samples(12.0)
    one_side[:, 1] = 0.0
    assert _warning_codes(client, one_side) == ["channel.silent"]


# -- 11. one code for bad parameters; the upload's field name ----------------------------


def test_wrong_upload_field_name_says_use_file(client: httpx.Client) -> None:
    for path in ("/v1/analyze", "/v1/analyses"):
        response = client.post(path, files={"audio": ("call.wav", stereo_wav(2.0))})
        body = assert_problem(response, 422, "upload.missing_file")
        assert "'file'" in str(body["detail"])


# -- 9. webhook secrets --------------------------------------------------------------------


def test_server_refuses_a_raw_webhook_secret(tmp_path: Path) -> None:
    """A raw secret signs with a key the official libraries never derive: refused at start,
    one line, exit 2, nothing bound or created."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIRRORLINE_")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "MIRRORLINE_DATA_DIR": str(tmp_path / "data"),
            "MIRRORLINE_WEBHOOK_SECRET": "my-raw-secret-1234",
        }
    )
    out = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve", "--port", "9"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )
    assert_cli_error(out, "config.invalid")
    assert "MIRRORLINE_WEBHOOK_SECRET" in out.stderr and "whsec_" in out.stderr
    assert "my-raw-secret" not in out.stderr  # the secret itself is never echoed
    assert not (tmp_path / "data").exists()
