"""Auth, restart durability, interrupted jobs and saturation, each on its own server."""

from __future__ import annotations

import concurrent.futures
import signal
import time
from typing import Any

import httpx
import pytest

from tests.service.audio import long_flac, stereo_wav
from tests.service.conftest import WEBHOOK_SECRET
from tests.service.test_api import assert_problem
from tests.service.test_jobs import submit, wait_done


def test_auth_on(make_server: Any) -> None:
    server = make_server({"MIRRORLINE_API_KEYS": "key-one,key-two"})
    with server.client() as anon:
        # open: probes and the API description
        for path in ("/healthz", "/readyz", "/openapi.json"):
            assert anon.get(path).status_code == 200
        missing = assert_problem(anon.get("/v1/analyses"), 401, "auth.missing")
        assert "Bearer" in str(missing["detail"])
        assert anon.get("/v1/analyses").headers["www-authenticate"].startswith("Bearer")
        assert_problem(anon.get("/metrics"), 401, "auth.missing")
        assert_problem(
            anon.post("/v1/analyze", files={"file": ("a.wav", stereo_wav(3.0))}),
            401,
            "auth.missing",
        )
        bad = {"Authorization": "Bearer nope"}
        assert_problem(anon.get("/v1/analyses", headers=bad), 401, "auth.invalid")
        assert_problem(anon.get("/v1/analyses", headers={"X-API-Key": "nope"}), 401, "auth.invalid")

    one = server.client(headers={"Authorization": "Bearer key-one"})
    two = server.client(headers={"X-API-Key": "key-two"})
    with one, two:
        assert one.get("/metrics").status_code == 200
        job = submit(one, stereo_wav(3.0)).json()
        assert wait_done(one, job["id"])["status"] == "completed"
        # another key's jobs are invisible
        assert_problem(two.get(f"/v1/analyses/{job['id']}"), 404, "job.not_found")
        assert_problem(two.delete(f"/v1/analyses/{job['id']}"), 404, "job.not_found")
        assert two.get("/v1/analyses").json()["items"] == []
        assert [j["id"] for j in one.get("/v1/analyses").json()["items"]] == [job["id"]]
        # callbacks need a signing secret, which this server lacks
        assert_problem(
            submit(two, stereo_wav(3.0), callback_url="http://127.0.0.1:9/hook"),
            422,
            "callback.not_configured",
        )


def test_auth_off_needs_no_key(make_server: Any) -> None:
    server = make_server()
    with server.client() as client:
        assert client.get("/v1/analyses").status_code == 200
        assert client.get("/metrics").status_code == 200


def test_finished_job_survives_restart(make_server: Any, tmp_path: Any) -> None:
    data = tmp_path / "durable"
    server = make_server(data_dir=data)
    with server.client() as client:
        job = submit(client, stereo_wav(4.0)).json()
        done = wait_done(client, job["id"])
        assert done["status"] == "completed"
    server.stop(signal.SIGKILL)
    again = make_server(data_dir=data)
    with again.client() as client:
        after = client.get(f"/v1/analyses/{job['id']}").json()
        assert after["status"] == "completed"
        assert after["report"] == done["report"]
        assert client.get(f"/v1/analyses/{job['id']}/windows.csv").status_code == 200


def _kill_while_processing(server: Any, client: httpx.Client, payload: bytes) -> str:
    job_id: str = submit(client, payload).json()["id"]
    deadline = time.monotonic() + 60
    while client.get(f"/v1/analyses/{job_id}").json()["status"] != "processing":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    server.stop(signal.SIGKILL)  # server and its workers, no goodbye
    return job_id


@pytest.mark.slow
def test_job_killed_mid_analysis_is_resumed_after_restart(make_server: Any, tmp_path: Any) -> None:
    data = tmp_path / "resume"
    payload = long_flac(1200.0)
    env = {"MIRRORLINE_MAX_UPLOAD_MB": "50"}
    server = make_server(env, data_dir=data)
    with server.client() as client:
        job_id = _kill_while_processing(server, client, payload)
    again = make_server(env, data_dir=data)
    with again.client() as client:
        done = wait_done(client, job_id, timeout_s=180)
        assert done["status"] == "completed", done
        assert done["attempts"] == 2
        assert done["audio_stored"] is False
    assert "interrupted job re-queued" in again.log()


@pytest.mark.slow
def test_job_killed_without_attempts_left_fails_clearly(make_server: Any, tmp_path: Any) -> None:
    data = tmp_path / "interrupted"
    env = {"MIRRORLINE_MAX_UPLOAD_MB": "50", "MIRRORLINE_MAX_JOB_ATTEMPTS": "1"}
    server = make_server(env, data_dir=data)
    with server.client() as client:
        job_id = _kill_while_processing(server, client, long_flac(1200.0))
    again = make_server(env, data_dir=data)
    with again.client() as client:
        job = client.get(f"/v1/analyses/{job_id}").json()
        assert job["status"] == "failed"
        assert job["error"]["code"] == "job.interrupted"
    assert list((data / "audio").iterdir()) == []  # its audio was deleted too


@pytest.mark.slow
def test_saturation_gives_503_with_retry_after_and_loop_stays_responsive(make_server: Any) -> None:
    server = make_server(
        {
            "MIRRORLINE_MAX_UPLOAD_MB": "100",
            "MIRRORLINE_MAX_QUEUE": "1",
            "MIRRORLINE_RETRY_AFTER_S": "7",
        }
    )
    # The running job must outlast the checks below (~1.5 s): a 20-minute call took only
    # ~2 s once the pipeline got faster, and the test then raced it; an hour takes ~5 s.
    long_call = long_flac(3600.0)
    with server.client() as client:
        running = submit(client, long_call).json()["id"]
        deadline = time.monotonic() + 60
        while client.get(f"/v1/analyses/{running}").json()["status"] != "processing":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        queued = submit(client, stereo_wav(3.0)).json()["id"]  # fills the queue (1)
        busy = submit(client, stereo_wav(3.0))
        body = assert_problem(busy, 503, "server.busy")
        assert busy.headers["retry-after"] == "7"
        assert "MAX_QUEUE" in str(body["detail"])

        # sync: one request may wait for the slot, the next is refused at once
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(
                lambda: httpx.post(
                    server.url + "/v1/analyze",
                    files={"file": ("w.wav", stereo_wav(3.0))},
                    timeout=300,
                )
            )
            time.sleep(1.0)
            started = time.perf_counter()
            refused = client.post("/v1/analyze", files={"file": ("r.wav", stereo_wav(3.0))})
            assert_problem(refused, 503, "server.busy")
            assert refused.headers["retry-after"] == "7"
            # the event loop is not blocked by the running analysis
            for _ in range(5):
                assert client.get("/healthz").status_code == 200
            assert time.perf_counter() - started < 5.0
            assert waiting.result().status_code == 200
        for job_id in (running, queued):
            assert wait_done(client, job_id, timeout_s=180)["status"] == "completed"


INTERNAL_CALLBACKS = (
    "http://127.0.0.1:9/hook",
    "http://localhost/hook",
    "http://10.0.0.7/hook",
    "http://169.254.169.254/latest/meta-data",  # cloud metadata
    "http://[::1]/hook",
    "http://[::ffff:192.168.1.1]/hook",
    "http://nonexistent.invalid/hook",
    # IPv6 forms that carry a private IPv4 address, and the IETF-reserved 192.0.0.0/24
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",  # NAT64 of 169.254.169.254
    "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    "http://[::7f00:1]/hook",  # IPv4-compatible 127.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",  # Teredo, client 192.0.2.45
    "http://[64:ff9b:1::a9fe:a9fe]/hook",  # local-use NAT64
    "http://192.0.0.8/hook",
)


def test_callbacks_to_internal_addresses_are_refused(make_server: Any) -> None:
    server = make_server({"MIRRORLINE_WEBHOOK_SECRET": WEBHOOK_SECRET})
    with server.client() as client:
        for url in INTERNAL_CALLBACKS:
            body = assert_problem(
                submit(client, stereo_wav(3.0), callback_url=url), 422, "callback.not_allowed"
            )
            assert "MIRRORLINE_WEBHOOK_ALLOW_PRIVATE" in str(body["detail"]), url
        # nothing was queued, and a public callback is still taken
        assert client.get("/v1/analyses").json()["items"] == []
        job = submit(client, stereo_wav(3.0), callback_url="https://93.184.216.34/hook").json()
        assert job["callback_url"] == "https://93.184.216.34/hook"
