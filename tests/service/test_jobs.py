"""Jobs: create, poll, CSV, list, delete, idempotency, webhooks (real HTTP stack)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import standardwebhooks

from service.webhooks import verify
from tests.service.audio import stereo_wav, truncated_wav
from tests.service.conftest import WEBHOOK_SECRET, Server
from tests.service.test_api import assert_problem


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def submit(client: httpx.Client, payload: bytes, **data: str) -> httpx.Response:
    return client.post("/v1/analyses", files={"file": ("call.wav", payload)}, data=data)


def wait_done(client: httpx.Client, job_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/v1/analyses/{job_id}").json()
        if job["status"] in ("completed", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout_s} s")


def test_job_lifecycle(server: Server, client: httpx.Client) -> None:
    created = submit(client, stereo_wav(8.0), window_s="4", hop_s="2")
    assert created.status_code == 202, created.text
    job = created.json()
    assert job["status"] in ("queued", "processing")
    assert created.headers["location"] == job["url"]
    assert job["url"].endswith(f"/v1/analyses/{job['id']}")

    done = wait_done(client, job["id"])
    assert done["status"] == "completed", done
    assert done["report"]["audio"]["channels"] == 2
    assert done["report"]["config"]["window_s"] == 4.0
    assert done["audio_stored"] is False
    assert list((server.data_dir / "audio").iterdir()) == []  # audio deleted once analysed

    csv = client.get(f"/v1/analyses/{job['id']}/windows.csv")
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0].startswith("start_s,end_s,agent_")
    assert len(lines) - 1 == len(done["report"]["windows"]) > 0

    assert client.delete(f"/v1/analyses/{job['id']}").status_code == 204
    assert_problem(client.get(f"/v1/analyses/{job['id']}"), 404, "job.not_found")
    assert_problem(client.get(f"/v1/analyses/{job['id']}/windows.csv"), 404, "job.not_found")
    assert_problem(client.delete(f"/v1/analyses/{job['id']}"), 404, "job.not_found")


def test_keep_audio_until_delete(server: Server, client: httpx.Client) -> None:
    job = submit(client, stereo_wav(4.0), keep_audio="true").json()
    done = wait_done(client, job["id"])
    assert done["status"] == "completed"
    assert done["audio_stored"] is True
    stored = list((server.data_dir / "audio").glob(f"{job['id']}*"))
    assert len(stored) == 1
    assert client.delete(f"/v1/analyses/{job['id']}").status_code == 204
    assert not stored[0].exists()


def test_failed_job_has_a_reason(client: httpx.Client) -> None:
    # a truncated WAV passes the header probe, so the worker finds the problem
    job = submit(client, truncated_wav()).json()
    done = wait_done(client, job["id"])
    assert done["status"] == "failed"
    assert done["error"]["code"] == "audio.truncated"
    assert done["error"]["message"]
    assert "report" not in done
    assert_problem(client.get(f"/v1/analyses/{job['id']}/windows.csv"), 409, "job.failed")


def test_unreadable_audio_is_refused_at_submission(client: httpx.Client) -> None:
    from tests.service.audio import mono_wav

    assert_problem(submit(client, mono_wav()), 422, "audio.not_stereo")
    assert_problem(submit(client, b"not audio at all" * 50), 415, "audio.undecodable")
    assert_problem(submit(client, stereo_wav(4.0), hop_s="0"), 422, "config.invalid")
    assert_problem(submit(client, stereo_wav(4.0), keep_audio="maybe"), 422, "request.invalid")
    assert_problem(
        submit(client, stereo_wav(4.0), callback_url="ftp://x/y"), 422, "request.invalid"
    )


def test_idempotency_key_returns_the_original_job(client: httpx.Client) -> None:
    payload = stereo_wav(4.0, seed=7)
    headers = {"Idempotency-Key": "order-0001"}
    first = client.post("/v1/analyses", files={"file": ("a.wav", payload)}, headers=headers)
    again = client.post("/v1/analyses", files={"file": ("a.wav", payload)}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = client.post(
        "/v1/analyses", files={"file": ("a.wav", stereo_wav(4.0, seed=8))}, headers=headers
    )
    assert_problem(other, 422, "idempotency.key_reused")
    fresh = client.post(
        "/v1/analyses", files={"file": ("a.wav", payload)}, headers={"Idempotency-Key": "order-2"}
    )
    assert fresh.json()["id"] != first.json()["id"]
    for job_id in (first.json()["id"], fresh.json()["id"]):
        wait_done(client, job_id)


def test_list_pagination(server: Server) -> None:
    # a fresh owner namespace is not available without auth: count only our own new jobs
    with server.client() as client:
        before = {j["id"] for j in _all_jobs(client, limit=100)}
        payload = stereo_wav(3.0)
        ids = {submit(client, payload).json()["id"] for _ in range(5)}
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/v1/analyses", params=params).json()
            assert len(page["items"]) <= 2
            seen += [j["id"] for j in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert pages < 100
        assert len(seen) == len(set(seen))  # no job twice
        assert set(seen) == before | ids  # none missed
        created = [j["created_at"] for j in _all_jobs(client, limit=100)]
        assert created == sorted(created, reverse=True)  # newest first
        assert_problem(
            client.get("/v1/analyses", params={"cursor": "garbage"}), 422, "request.invalid"
        )
        only = client.get("/v1/analyses", params={"status": "failed", "limit": 100}).json()
        assert all(j["status"] == "failed" for j in only["items"])
        for job_id in ids:
            wait_done(client, job_id)


def _all_jobs(client: httpx.Client, *, limit: int) -> list[dict[str, Any]]:
    return client.get("/v1/analyses", params={"limit": limit}).json()["items"]


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records deliveries; fails the first ``fail`` ones."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.calls: list[tuple[dict[str, str], str, int]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                status = 500 if len(receiver.calls) < receiver.fail else 204
                receiver.calls.append(
                    ({k.lower(): v for k, v in self.headers.items()}, body, status)
                )
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def wait(self, n: int, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.calls) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.calls) >= n, self.calls

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail=1)
    yield r
    r.close()


def test_webhook_signed_and_retried(client: httpx.Client, receiver: Receiver) -> None:
    job = submit(client, stereo_wav(4.0), callback_url=receiver.url).json()
    receiver.wait(2)  # the first delivery gets a 500, the retry a 204
    (h1, b1, s1), (h2, b2, s2) = receiver.calls[:2]
    assert (s1, s2) == (500, 204)
    assert h1["webhook-id"] == h2["webhook-id"]  # same message, retried
    for headers, body in ((h1, b1), (h2, b2)):
        assert verify(WEBHOOK_SECRET, headers, body)
        assert headers["webhook-signature"].startswith("v1,")
        # what docs/service.md tells receivers to use: the official library
        assert standardwebhooks.Webhook(WEBHOOK_SECRET).verify(body, headers)["data"]["id"]
    event = json.loads(b2)
    assert event["type"] == "analysis.completed"
    assert event["data"]["id"] == job["id"]
    assert event["data"]["status"] == "completed"
    assert event["data"]["result_url"] == job["url"]
    assert "report" not in event["data"]
    assert client.get(event["data"]["result_url"]).json()["status"] == "completed"
    time.sleep(0.5)
    assert len(receiver.calls) == 2  # delivered: no more attempts


def test_webhook_on_failure(client: httpx.Client) -> None:
    receiver = Receiver()
    try:
        job = submit(client, truncated_wav(), callback_url=receiver.url).json()
        receiver.wait(1)
        headers, body, _ = receiver.calls[0]
        assert verify(WEBHOOK_SECRET, headers, body)
        event = json.loads(body)
        assert event["type"] == "analysis.failed"
        assert event["data"]["id"] == job["id"]
        assert event["data"]["error"]["code"] == "audio.truncated"
    finally:
        receiver.close()
