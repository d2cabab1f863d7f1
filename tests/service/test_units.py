"""In-process checks of the pieces with known answers: signatures, status mapping, settings."""

from __future__ import annotations

import asyncio
import base64
import http.server
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from bench.mirroring_sim import simulate_call
from dsp import errors
from dsp.mirroring import LARGE_EFFECT_R, analyze_mirroring
from dsp.pipeline import mirroring_warnings
from models.report import Mirroring
from service.analysis import mirroring_model
from service.problems import STATUS, problem_body, status_of
from service.settings import Settings
from service.store import Store, decode_cursor, encode_cursor
from service.webhooks import (
    WebhookSender,
    event_body,
    pinned,
    refused_destination,
    sign,
    verify,
)
from tests.service.conftest import WEBHOOK_SECRET
from tests.service.test_jobs import Receiver


def test_signature_matches_standard_webhooks_reference_vector() -> None:
    # The test vector of the Standard Webhooks reference libraries (svix / standard-webhooks).
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        '{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize(
    "secret",
    [
        "plain-secret-of-some-length",  # raw: the official libraries would base64-decode it
        "whsec_not base64!",
        "whsec_c2hvcnQ=",  # a 5-byte key
        "whsec_",
    ],
)
def test_only_whsec_secrets_are_accepted(secret: str) -> None:
    with pytest.raises(ValueError, match="whsec_|base64|bytes"):
        Settings(webhook_secret=secret)


def test_whsec_secret_signs_what_the_official_library_verifies() -> None:
    standardwebhooks = pytest.importorskip("standardwebhooks")
    unpadded = WEBHOOK_SECRET.rstrip("=")
    for secret in (WEBHOOK_SECRET, unpadded):
        assert Settings(webhook_secret=secret).webhook_secret == secret
        now = int(time.time())
        headers = {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(now),
            "webhook-signature": sign(secret, "msg_1", now, '{"a":1}'),
        }
        assert standardwebhooks.Webhook(secret).verify('{"a":1}', headers) == {"a": 1}


def test_verify_rejects_tampering_and_old_timestamps() -> None:
    secret, body = WEBHOOK_SECRET, '{"a":1}'
    now = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(secret, "msg_1", now, body),
    }
    assert verify(secret, headers, body)
    assert not verify(secret, headers, '{"a":2}')
    assert not verify(
        "whsec_" + base64.b64encode(b"another key of 24 bytes!").decode(), headers, body
    )
    old = dict(headers, **{"webhook-timestamp": str(now - 3600)})
    old["webhook-signature"] = sign(secret, "msg_1", now - 3600, body)
    assert not verify(secret, old, body)


def test_event_body_carries_urls_not_the_report() -> None:
    body = json.loads(
        event_body(
            job_id="an_1", status="completed", result_url="http://h/v1/analyses/an_1", error=None
        )
    )
    assert body["type"] == "analysis.completed"
    assert body["data"]["id"] == "an_1"
    assert body["data"]["result_url"] == "http://h/v1/analyses/an_1"
    assert "report" not in json.dumps(body)


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (errors.AudioUndecodable, 415),
        (errors.AudioEmpty, 422),
        (errors.AudioNotStereo, 422),
        (errors.AudioTooManyChannels, 422),
        (errors.AudioTooShort, 422),
        (errors.AudioTruncated, 422),
        (errors.AudioBadRate, 422),
        (errors.AudioNonFinite, 422),
        (errors.AudioTooLong, 413),
        (errors.ParameterError, 422),
        (errors.FileMissing, 422),
    ],
)
def test_every_input_error_code_has_a_4xx_status(exc: type[errors.InputError], status: int) -> None:
    assert exc.code in STATUS
    assert status_of(exc.code) == status


def test_unknown_codes_are_500_and_bodies_follow_rfc9457() -> None:
    assert status_of("something.new") == 500
    body = problem_body("audio.not_stereo", "mono", instance="/v1/analyze")
    assert set(body) >= {"type", "title", "status", "detail", "instance", "code"}
    assert body["status"] == 422


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRRORLINE_API_KEYS", " k1, k2 ,,")
    monkeypatch.setenv("MIRRORLINE_MAX_UPLOAD_MB", "1.5")
    monkeypatch.setenv("MIRRORLINE_LOG_LEVEL", "debug")
    monkeypatch.setenv("MIRRORLINE_WEBHOOK_SECRET", "")
    settings = Settings()
    assert settings.api_keys == ("k1", "k2")
    assert settings.max_upload_bytes == 1_500_000
    assert settings.log_level == "DEBUG"
    assert settings.webhook_secret is None
    monkeypatch.setenv("MIRRORLINE_WORKERS", "0")
    with pytest.raises(ValueError, match="workers"):
        Settings()


def test_cursor_round_trip_and_garbage() -> None:
    assert decode_cursor(encode_cursor(12.5, "an_x")) == (12.5, "an_x")
    assert decode_cursor("not-a-cursor!") is None


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://93.184.216.34/hook", False),
        ("http://8.8.8.8:8080/x", False),
        ("http://127.0.0.1:9/hook", True),
        ("http://10.1.2.3/", True),
        ("http://172.16.0.1/", True),
        ("http://192.168.0.10/", True),
        ("http://100.64.0.1/", True),  # carrier-grade NAT
        ("http://169.254.169.254/", True),  # cloud metadata
        ("http://0.0.0.0/", True),
        ("http://224.0.0.1/", True),
        ("http://[::1]/", True),
        ("http://[fd00::1]/", True),
        ("http://[::ffff:127.0.0.1]/", True),
        ("http://localhost/", True),
        ("http://[64:ff9b::a9fe:a9fe]/", True),  # NAT64 of the metadata address
        ("http://[64:ff9b::808:808]/", False),  # NAT64 of a public address
        ("http://[2002:7f00:1::]/", True),  # 6to4 of loopback
        ("http://[2002:808:808::]/", False),  # 6to4 of a public address
        ("http://[::7f00:1]/", True),  # IPv4-compatible loopback
        ("http://[::a00:1]/", True),  # IPv4-compatible 10.0.0.1
        ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", True),  # Teredo, client 192.0.2.45
        ("http://[2001:0:a00:1:8000:63bf:f7f7:f7f7]/", True),  # Teredo, server 10.0.0.1
        ("http://[64:ff9b:1::a9fe:a9fe]/", True),  # local-use NAT64
        ("http://192.0.0.8/", True),
        ("http://198.18.0.1/", True),  # benchmarking
        ("http://[::]/", True),
        ("http://[2606:4700:4700::1111]/", False),
    ],
)
def test_callback_destinations(url: str, refused: bool) -> None:
    reason = asyncio.run(refused_destination(url))
    assert (reason is not None) == refused, reason


def test_delivery_rechecks_the_destination(tmp_path: Path) -> None:
    """A queued webhook whose host is (now) internal is never posted, with the reason kept."""
    receiver = Receiver()
    store = Store(tmp_path / "jobs.db")
    try:

        async def deliver(allow_private: bool) -> None:
            sender = WebhookSender(
                store, secret=WEBHOOK_SECRET, max_attempts=1, backoff_s=0.1, timeout_s=2.0,
                allow_private=allow_private,
            )  # fmt: skip
            async with httpx.AsyncClient() as client:
                for due in store.due_webhooks(time.time() + 1.0, limit=10):
                    await sender._deliver(client, due)

        store.add_webhook("msg_1", "job_1", receiver.url, "{}")
        asyncio.run(deliver(allow_private=False))
        (row,) = store.webhooks_of("job_1")
        assert row["status"] == "failed" and "not a public address" in row["last_error"]
        assert receiver.calls == []
        store.add_webhook("msg_2", "job_2", receiver.url, "{}")
        asyncio.run(deliver(allow_private=True))  # a trusted network: delivered
        assert store.webhooks_of("job_2")[0]["status"] == "delivered"
        assert len(receiver.calls) == 1
    finally:
        receiver.close()
        store.close()


@pytest.mark.parametrize(
    ("url", "address", "want_url", "want_headers", "want_ext"),
    [
        ("http://hooks.example.com/in", "93.184.215.14", "http://93.184.215.14/in",
         {"host": "hooks.example.com"}, {}),
        ("https://hooks.example.com:8443/in?a=1", "93.184.215.14",
         "https://93.184.215.14:8443/in?a=1", {"host": "hooks.example.com:8443"},
         {"sni_hostname": "hooks.example.com"}),
        ("https://u:p@hooks.example.com/in", "2606:2800:21f:cb07::1",
         "https://u:p@[2606:2800:21f:cb07::1]/in", {"host": "hooks.example.com"},
         {"sni_hostname": "hooks.example.com"}),
        ("https://93.184.215.14/in", "93.184.215.14", "https://93.184.215.14/in", {}, {}),
    ],
)  # fmt: skip
def test_pinned_request_keeps_the_name(
    url: str, address: str, want_url: str, want_headers: dict[str, str], want_ext: dict[str, str]
) -> None:
    assert pinned(url, address) == (want_url, want_headers, want_ext)


def test_delivery_connects_to_the_checked_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name is public when checked and internal a moment later. The
    request goes to the address that was checked (never resolved again), under its name."""
    answers = iter(["93.184.215.14", "127.0.0.1", "127.0.0.1"])

    def getaddrinfo(host: str, port: int, *args: object, **kw: object) -> list[tuple]:
        assert host == "hooks.example.com"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    store = Store(tmp_path / "jobs.db")
    try:
        store.add_webhook("msg_1", "job_1", "https://hooks.example.com/in", "{}")

        async def deliver() -> None:
            sender = WebhookSender(
                store, secret=WEBHOOK_SECRET, max_attempts=1, backoff_s=0.1, timeout_s=2.0
            )
            async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
                for due in store.due_webhooks(time.time() + 1.0, limit=10):
                    await sender._deliver(client, due)

        asyncio.run(deliver())
        assert store.webhooks_of("job_1")[0]["status"] == "delivered"
        (request,) = sent
        assert str(request.url) == "https://93.184.215.14/in"
        assert request.headers["host"] == "hooks.example.com"
        assert request.extensions["sni_hostname"] == "hooks.example.com"
        assert next(answers) == "127.0.0.1"  # one lookup only: the check's
    finally:
        store.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_pinned_https_checks_the_certificate_against_the_name(tmp_path: Path) -> None:
    """A real TLS server on 127.0.0.1 with a certificate for 'localhost': reached through
    the address, the name 'localhost' verifies; any other name is refused."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Ok)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    client_ctx = ssl.create_default_context(cafile=str(cert))
    try:
        with httpx.Client(verify=client_ctx, timeout=5.0) as client:
            url, headers, ext = pinned(f"https://localhost:{port}/in", "127.0.0.1")
            response = client.post(url, content="{}", headers=headers, extensions=ext)
            assert response.status_code == 204
            url, headers, ext = pinned(f"https://other.example:{port}/in", "127.0.0.1")
            with pytest.raises(httpx.ConnectError, match="(?i)certificate|hostname"):
                client.post(url, content="{}", headers=headers, extensions=ext)
    finally:
        server.shutdown()
        server.server_close()


def test_low_power_warning_only_on_calls_too_short_for_moderate_following() -> None:
    def measured(duration_s: float) -> Any:
        call = simulate_call(np.random.default_rng(7), duration_s=duration_s)
        return analyze_mirroring(call.agent, call.customer, call.windows)

    short, long, tiny = measured(270.0), measured(1200.0), measured(40.0)
    (warning,) = mirroring_warnings(short)
    assert warning.code == "mirroring.low_power"
    assert f"r = {short.detectable_r:.2f}" in warning.message
    assert short.detectable_r > LARGE_EFFECT_R > long.detectable_r
    assert mirroring_warnings(long) == []
    assert mirroring_warnings(tiny) == [] and tiny.detectable_r is None  # nothing ran
    assert mirroring_warnings(None) == []
    # the report contract carries both numbers
    section = mirroring_model(short)
    assert isinstance(section, Mirroring) and section.detectable_r is not None
    follows = section.features["pitch_level"].synchrony.customer_follows_agent
    assert follows.r_needed is not None and 0.5 < follows.r_needed < 1.0
