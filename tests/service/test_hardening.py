"""Hardening regressions through the real stack (uvicorn subprocess, httpx; the CLI as a
subprocess): inputs and fields that used to crash, each answered with a clear 4xx."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


# -- 2. cut-short audio --------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A 10 s call in the compressed formats whose truncation used to go unnoticed."""
    from tests.audiofiles import write_format

    folder = tmp_path_factory.mktemp("encoded")
    samples = np.ascontiguousarray(call_samples(10.0, sample_rate_hz=16000).T)
    names = ("mp3", "webm_opus", "ogg_vorbis", "ogg_opus")
    return {n: write_format(folder / n, n, samples, 16000).read_bytes() for n in names}


@pytest.mark.parametrize("name", ["mp3", "webm_opus"])
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_compressed_audio_is_refused(
    client: httpx.Client, encoded: dict[str, bytes], tmp_path: Path, name: str, fraction: float
) -> None:
    """These containers write the duration in their header: a shorter decode is a cut."""
    data = encoded[name]
    cut = data[: int(len(data) * fraction)]
    assert_problem(client.post("/v1/analyze", files={"file": ("c", cut)}), 422, "audio.truncated")
    path = tmp_path / f"cut.{name}"
    path.write_bytes(cut)
    assert_cli_error(run_cli("analyze", str(path)), "audio.truncated")
    whole = client.post("/v1/analyze", files={"file": ("c", data)})
    assert whole.status_code == 200, whole.text


def test_truncated_job_fails_with_the_reason(
    client: httpx.Client, encoded: dict[str, bytes]
) -> None:
    from tests.service.test_jobs import wait_done

    cut = encoded["mp3"][: len(encoded["mp3"]) // 2]
    job = client.post("/v1/analyses", files={"file": ("cut.mp3", cut)})
    assert job.status_code == 202, job.text
    done = wait_done(client, job.json()["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "audio.truncated", done


@pytest.mark.parametrize("name", ["ogg_vorbis", "ogg_opus"])
def test_truncated_ogg_is_reported_with_a_warning(
    client: httpx.Client, encoded: dict[str, bytes], name: str
) -> None:
    """Ogg has no duration in its header; the missing end-of-stream page says it was cut."""
    data = encoded[name]
    whole = client.post("/v1/analyze", files={"file": ("c", data)})
    assert "audio.truncated" not in [w["code"] for w in whole.json()["warnings"]]
    cut = client.post("/v1/analyze", files={"file": ("c", data[: len(data) * 6 // 10])})
    assert cut.status_code == 200, cut.text
    warnings = {w["code"]: w["message"] for w in cut.json()["warnings"]}
    assert "cut short" in warnings["audio.truncated"]


def test_multipart_without_its_closing_boundary(server: Server, client: httpx.Client) -> None:
    head = b'--xyzzy\r\nContent-Disposition: form-data; name="file"; filename="c.wav"\r\n\r\n'
    wav = stereo_wav(4.0)
    headers = {"content-type": "multipart/form-data; boundary=xyzzy"}
    cut_in_file = client.post("/v1/analyze", content=head + wav, headers=headers)
    assert_problem(cut_in_file, 422, "audio.truncated")
    no_final = client.post("/v1/analyses", content=head + wav + b"\r\n--xyzzy\r\n", headers=headers)
    assert_problem(no_final, 400, "upload.malformed")
    assert list((server.data_dir / "uploads").iterdir()) == []


def test_content_length_shorter_than_the_body(server: Server) -> None:
    """The server reads Content-Length bytes: the upload it sees lacks its closing boundary."""
    import socket

    body, content_type = multipart([(b'name="file"; filename="c.wav"', stereo_wav(4.0))])
    length = len(body) // 2
    request = (
        f"POST /v1/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request + body[:length])
        reply = b""  # the answer comes before we send the rest
        while b"audio.truncated" not in reply and (chunk := sock.recv(65536)):
            reply += chunk
        with contextlib.suppress(OSError):
            sock.sendall(body[length:])
    status_line = reply.split(b"\r\n", 1)[0]
    assert b" 422 " in status_line, reply[:500]
    assert b'"code":"audio.truncated"' in reply.replace(b" ", b"")


# -- 7. nothing recoverable after DELETE ---------------------------------------------------


def _files_holding(folder: Path, needles: list[bytes]) -> dict[str, list[str]]:
    """Every file under ``folder`` (database, its -wal and -shm, audio) holding a needle."""
    found: dict[str, list[str]] = {}
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits = [n.decode() for n in needles if n in data]
            if hits:
                found[path.name] = hits
    return found


def test_deleted_job_leaves_nothing_on_disk_even_after_kill_9(make_server: Any) -> None:
    import signal
    import uuid

    from tests.service.test_jobs import wait_done

    server = make_server()
    marker = uuid.uuid4().hex
    filename, key = f"private-{marker}.wav", f"key-{marker}"
    with server.client() as client:
        kept = client.post("/v1/analyses", files={"file": ("other.wav", stereo_wav(4.0))})
        created = client.post(
            "/v1/analyses",
            files={"file": (filename, stereo_wav(4.0))},
            data={"keep_audio": "true"},
            headers={"Idempotency-Key": key},
        )
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        assert wait_done(client, job_id)["status"] == "completed"
        needles = [job_id.encode(), filename.encode(), key.encode()]
        assert _files_holding(server.data_dir, needles)  # it is there before the delete
        assert client.delete(f"/v1/analyses/{job_id}").status_code == 204
        assert _files_holding(server.data_dir, needles) == {}
        assert wait_done(client, kept.json()["id"])["status"] == "completed"
    server.stop(signal.SIGKILL)  # no graceful checkpoint at shutdown
    assert _files_holding(server.data_dir, needles) == {}
    server.start()  # and the database is whole after the kill: the other job is still there
    with server.client() as client:
        assert client.get(f"/v1/analyses/{kept.json()['id']}").json()["status"] == "completed"
        assert client.get(f"/v1/analyses/{job_id}").status_code == 404


# -- 8. leaks and trust --------------------------------------------------------------------


def test_error_details_do_not_show_server_paths(server: Server, client: httpx.Client) -> None:
    for path in ("/v1/analyze", "/v1/analyses"):
        body = assert_problem(
            client.post(path, files={"file": ("empty.wav", b"")}), 422, "audio.empty"
        )
        detail = str(body["detail"])
        assert str(server.data_dir) not in detail and ".upload" not in detail, detail
        assert "the upload" in detail


def test_job_urls_never_come_from_the_host_header(client: httpx.Client) -> None:
    created = client.post(
        "/v1/analyses",
        files={"file": ("call.wav", stereo_wav(2.0))},
        headers={"Host": "evil.example"},
    )
    assert created.status_code == 202, created.text
    job = created.json()
    assert created.headers["location"] == job["url"] == f"/v1/analyses/{job['id']}"
    assert "evil" not in created.text


def test_public_base_url_makes_absolute_urls(make_server: Any) -> None:
    server = make_server({"MIRRORLINE_PUBLIC_BASE_URL": "https://calls.example.com/"})
    with server.client() as client:
        created = client.post(
            "/v1/analyses",
            files={"file": ("call.wav", stereo_wav(2.0))},
            headers={"Host": "evil.example"},
        )
    job_id = created.json()["id"]
    assert created.headers["location"] == f"https://calls.example.com/v1/analyses/{job_id}"


def _raw_post(port: int, head: bytes, pieces: list[bytes], pause_s: float) -> bytes:
    """Send a request head and body pieces with pauses between them; the reply (b"" if the
    server hung up without one)."""
    import socket
    import time

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        with contextlib.suppress(OSError):
            for piece in pieces:
                sock.sendall(piece)
                time.sleep(pause_s)
        reply = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                reply += chunk
        return reply


def test_stalled_and_trickling_uploads_time_out(make_server: Any) -> None:
    import time

    server = make_server(
        {"MIRRORLINE_UPLOAD_IDLE_TIMEOUT_S": "1", "MIRRORLINE_UPLOAD_MIN_BYTES_PER_S": "2000"}
    )
    body, content_type = multipart([(b'name="file"; filename="c.wav"', stereo_wav(4.0))])

    def head(length: int) -> bytes:
        return (
            f"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\n\r\n"
        ).encode()

    started = time.monotonic()
    # a Content-Length larger than the body: the server used to wait for ever
    stalled = _raw_post(server.port, head(len(body) + 1000), [body], 0.0)
    assert b" 408 " in stalled.split(b"\r\n", 1)[0], stalled[:300]
    assert b"upload.timeout" in stalled
    # 50 bytes every 0.2 s: never idle for 1 s, but 250 B/s
    trickle = _raw_post(
        server.port, head(len(body)), [body[i : i + 50] for i in range(0, 2000, 50)], 0.2
    )
    assert b" 408 " in trickle.split(b"\r\n", 1)[0], trickle[:300]
    assert time.monotonic() - started < 20
    assert list((server.data_dir / "uploads").iterdir()) == []  # partial files deleted
    with server.client() as client:
        assert client.get("/healthz").status_code == 200


# -- 4. one server per data directory ------------------------------------------------------


def test_second_server_on_the_same_data_dir_refuses_and_touches_nothing(
    make_server: Any, tmp_path: Path
) -> None:
    import time

    from tests.service.audio import long_flac
    from tests.service.test_jobs import wait_done

    data = tmp_path / "shared"
    env = {"MIRRORLINE_MAX_UPLOAD_MB": "200"}
    first = make_server(env, data_dir=data)
    with first.client() as client:
        # the job must outlast two CLI start-ups (a few seconds each): an hour-long call (a
        # 10-minute one finished first on a loaded machine and the check raced it)
        job_id = client.post("/v1/analyses", files={"file": ("long.flac", long_flac(3600.0))})
        job_id = job_id.json()["id"]
        deadline = time.monotonic() + 60
        while client.get(f"/v1/analyses/{job_id}").json()["status"] != "processing":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        before = {p.name: p.stat().st_mtime_ns for p in (data / "audio").iterdir()}
        for port in (first.port, first.port + 1):  # its own port (bind fails) or another
            second = Server(data, env)
            second.port = port
            out = subprocess.run(
                [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
                capture_output=True,
                text=True,
                cwd=REPO,
                env=second.env(),
                timeout=60,
            )
            assert_cli_error(out, "server.data_dir_in_use")
            assert str(first.process.pid) in out.stderr  # who holds it
        assert client.get(f"/v1/analyses/{job_id}").json()["status"] == "processing"
        assert {p.name: p.stat().st_mtime_ns for p in (data / "audio").iterdir()} == before
        done = wait_done(client, job_id, timeout_s=180)
        assert done["status"] == "completed" and done["attempts"] == 1, done
    first.stop()
    make_server(env, data_dir=data)  # once the first is gone, the directory is free


# -- 5. no orphans -------------------------------------------------------------------------


def _group_members(pgid: int) -> list[str]:
    """Live processes in process group ``pgid`` (the server's session): "pid name"."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = stat.read_text()
            name = text[text.index("(") + 1 : text.rindex(")")]
            fields = text[text.rindex(")") + 2 :].split()
            if fields[0] != "Z" and int(fields[2]) == pgid:
                found.append(f"{stat.parent.name} {name}")
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_kill_9_of_the_server_leaves_no_worker_behind(make_server: Any, tmp_path: Path) -> None:
    import signal
    import time

    from tests.service.audio import long_flac
    from tests.service.test_jobs import wait_done

    data = tmp_path / "orphans"
    env = {"MIRRORLINE_MAX_UPLOAD_MB": "50", "MIRRORLINE_WORKERS": "2"}
    server = make_server(env, data_dir=data)
    with server.client() as client:
        job_id = client.post("/v1/analyses", files={"file": ("long.flac", long_flac(600.0))})
        job_id = job_id.json()["id"]
        deadline = time.monotonic() + 60
        while client.get(f"/v1/analyses/{job_id}").json()["status"] != "processing":
            assert time.monotonic() < deadline
            time.sleep(0.02)
    pgid = server.process.pid
    assert len(_group_members(pgid)) >= 3  # server, 2 workers (and the resource tracker)
    os.kill(pgid, signal.SIGKILL)  # the server alone: its workers get no signal from us
    server.process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _group_members(pgid) == []  # workers and resource tracker died with it
    again = make_server(env, data_dir=data)
    assert len(_group_members(again.process.pid)) <= 4  # nothing stacked
    with again.client() as client:
        assert wait_done(client, job_id, timeout_s=180)["status"] == "completed"


# -- 10. the OpenAPI document matches what the server does ----------------------------------


def test_openapi_matches_behaviour(make_server: Any) -> None:
    import re

    server = make_server({"MIRRORLINE_API_KEYS": "k1"})
    with server.client() as anonymous, server.client(headers={"X-API-Key": "k1"}) as client:
        spec = anonymous.get("/openapi.json").json()
        # /metrics is documented as what it serves: Prometheus text
        metrics_doc = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
        assert list(metrics_doc) == ["text/plain"]
        assert client.get("/metrics").headers["content-type"].startswith("text/plain")
        # 405 names every method the path takes
        for path, operations in spec["paths"].items():
            url = path.replace("{job_id}", "an_0")
            methods = sorted(m.upper() for m in operations)
            other = next(m for m in ("PATCH", "PUT", "POST") if m not in methods)
            response = client.request(other, url)
            assert_problem(response, 405, "method_not_allowed")
            assert response.headers["allow"] == ", ".join(methods), path
        # unknown form fields and the cursor's form are in the contract
        upload = spec["paths"]["/v1/analyze"]["post"]["requestBody"]["content"]
        assert upload["multipart/form-data"]["schema"]["additionalProperties"] is False
        cursor = next(
            p for p in spec["paths"]["/v1/analyses"]["get"]["parameters"] if p["name"] == "cursor"
        )
        assert "next_cursor" in cursor["description"]
        # /docs needs no key and no network: every asset comes from this server
        page = anonymous.get("/docs")
        assert page.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert assets and all(a.startswith("/docs/assets/") for a in assets), assets
        for asset in assets:
            assert anonymous.get(asset).status_code == 200, asset
        assert "cdn" not in page.text.lower()
        # no second API browser that would need a key (or a CDN)
        assert client.get("/redoc").status_code == 404
        # the key is part of the contract: declared for every operation but the open ones
        schemes = spec["components"]["securitySchemes"]
        assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
        assert spec["security"] == [{"bearer": []}, {"apiKey": []}]
        assert spec["paths"]["/healthz"]["get"]["security"] == []
        assert_problem(anonymous.get("/metrics"), 401, "auth.missing")
