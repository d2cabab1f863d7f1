"""The live page (GET /v1/streams/{id}/live) in headless Chromium while a call streams:
it follows the events (the only request it makes), fills in both speakers, the charts and
the mirroring so far, and shows the end with a link to the analysis; no console error, no
CSP refusal."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from service.live_page import render_live_page
from service.replay import send, twilio_messages
from tests import chromium
from tests.service.audio import call_samples


def test_the_page_is_self_contained_and_passes_the_key_on() -> None:
    page, csp = render_live_page("CA<1>", token="k y")
    assert "CA&lt;1&gt;" in page and "CA<1>" not in page
    assert '"events": "events?token=k%20y"' in page
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")


def test_live_page_in_chromium_follows_a_streaming_call(make_server: Any) -> None:
    chromium.require_chromium()
    server = make_server({"MIRRORLINE_API_KEYS": "page-key", "MIRRORLINE_LIVE_MIRRORING_S": "60"})
    audio = np.round(call_samples(70.0, seed=7).T * 32767).astype(np.int16)
    messages = twilio_messages(audio, "CApage1", custom={"token": "page-key"})
    url = server.url.replace("http://", "ws://") + "/v1/streams/twilio"
    results: list[Any] = []
    sender = threading.Thread(
        target=lambda: results.append(send(url, messages, realtime_s_per_message=0.004)),
        daemon=True,
    )
    sender.start()  # 70 s of audio in about 30 s: the mirroring of the first minute comes
    with server.client(headers={"X-API-Key": "page-key"}) as client:
        deadline = time.monotonic() + 30
        while client.get("/v1/streams/CApage1").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.get("/v1/streams/CApage1/live").status_code == 200
    with server.client() as anonymous:
        assert anonymous.get("/v1/streams/CApage1/live").status_code == 401
    page_url = f"{server.url}/v1/streams/CApage1/live?token=page-key"
    with chromium.Browser(loopback=True) as browser:
        visit = browser.open_url(page_url, allow_prefix=f"{server.url}/v1/streams/CApage1/")
        deadline = time.monotonic() + 60
        while "ended" not in (
            browser.evaluate("document.getElementById('state').textContent") or ""
        ):
            assert time.monotonic() < deadline, browser.evaluate("document.body.innerText")
            time.sleep(0.2)
        text = browser.evaluate("document.body.innerText")
        pitch = browser.evaluate("document.getElementById('agent-pitch').textContent")
        paths = browser.evaluate("document.querySelectorAll('svg path').length")
        link = browser.evaluate("document.querySelector('#state a').getAttribute('href')")
        as_of = browser.evaluate("document.getElementById('mirroring-asof').textContent")
        rows = browser.evaluate("document.querySelectorAll('#mirroring tr').length")
        errors = browser.errors_now()
    sender.join(timeout=30)
    assert results and results[0][0] == 1000
    assert "ended (stop)" in text
    assert pitch not in ("", "\u2013") and float(pitch) > 50
    assert paths == 6  # three charts, two speakers each
    assert link.startswith("/v1/analyses/an_")
    assert as_of == "(the first 60 s)" and rows == 4  # tone and tempo, each direction
    assert visit.requests == [f"{server.url}/v1/streams/CApage1/events?token=page-key"]
    assert errors == []
