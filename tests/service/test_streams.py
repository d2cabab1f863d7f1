"""Live streams through a real ``mirrorline serve`` and a real WebSocket client.

A call streamed as Twilio would (frames reordered and duplicated) ends in the same report
as the batch analysis of the recording it carried; live events arrive over SSE while it
streams; bad messages, auth and conflicts close the socket with documented codes.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
import uuid
from typing import Any, get_args

import httpx
import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from models.report import FeatureName
from service.replay import (
    audiohook_messages,
    mulaw_roundtrip,
    raw_messages,
    send,
    twilio_messages,
)
from tests import synthcall as sc
from tests.service.audio import alternating_turns, call_samples, planted_call
from tests.service.conftest import Server

needs_espeak = pytest.mark.skipif(not sc.espeak_available(), reason="espeak-ng is not on PATH")


def _ws(server: Server, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


def _wav(audio: npt.NDArray[np.int16], sample_rate_hz: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio.T, sample_rate_hz, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _wait_analysis(client: httpx.Client, stream_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stream = client.get(f"/v1/streams/{stream_id}").json()
        if stream["analysis_status"] in ("completed", "failed"):
            return stream
        time.sleep(0.3)
    raise AssertionError(f"stream {stream_id} not analysed: {stream}")


def _batch_report(client: httpx.Client, wav: bytes, name: str, agent_channel: int) -> Any:
    job = client.post(
        "/v1/analyses",
        files={"file": (name, wav, "audio/wav")},
        data={"agent_channel": str(agent_channel)},
    ).json()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = client.get(f"/v1/analyses/{job['id']}").json()
        if body["status"] == "completed":
            return body["report"]
        assert body["status"] in ("queued", "processing"), body
        time.sleep(0.3)
    raise AssertionError("batch analysis did not finish")


class _Events(threading.Thread):
    """Collects a stream's SSE events in the background."""

    def __init__(self, server: Server, stream_id: str) -> None:
        super().__init__(daemon=True)
        self.url = f"{server.url}/v1/streams/{stream_id}/events"
        self.events: list[dict[str, Any]] = []
        self.content_type = ""

    def run(self) -> None:
        with httpx.stream("GET", self.url, timeout=120) as response:
            self.content_type = response.headers["content-type"]
            kind = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    event = json.loads(line[6:])
                    assert event["event"] == kind
                    self.events.append(event)
                    if kind == "end":
                        return


def _subscribe(server: Server, stream_id: str) -> _Events:
    """Wait for the stream to exist, then follow its events."""
    with server.client() as client:
        deadline = time.monotonic() + 30
        while client.get(f"/v1/streams/{stream_id}").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    events = _Events(server, stream_id)
    events.start()
    return events


@needs_espeak
def test_twilio_stream_of_an_espeak_call_ends_in_the_batch_report(make_server: Any) -> None:
    rng = np.random.default_rng(23)
    call = sc.render_call(
        sc.plan_call("follow", duration_s=60.0, rng=rng, follower="customer"),
        rng=rng,
        sample_rate_hz=8000,
    )
    audio = np.round(np.clip(call.audio, -1, 1) * 32767).astype(np.int16)
    # channel 0 is Twilio's inbound track (the customer here), channel 1 the outbound
    # track (the agent, MIRRORLINE_STREAM_AGENT_TRACK's default)
    audio = audio[::-1].copy()
    messages = twilio_messages(audio, "CAe2e0001", shuffle_window=24, duplicate_every=9)
    server = make_server({"MIRRORLINE_WORKERS": "2"})
    url = _ws(server, "/v1/streams/twilio")
    subscribed: list[_Events] = []

    def paced() -> Any:
        # 3 s of audio, then the rest once the first live event came (the live workers
        # start with the first stream): events while it streams at 20x real time
        for k, message in enumerate(messages):
            if k == 300:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not (
                    subscribed and any(e["event"] == "live" for e in subscribed[0].events)
                ):
                    time.sleep(0.02)
            time.sleep(0.0005)
            yield message

    sender = threading.Thread(target=lambda: results.append(send(url, paced())))
    results: list[Any] = []
    sender.start()
    events = _subscribe(server, "CAe2e0001")
    subscribed.append(events)
    sender.join(timeout=120)
    events.join(timeout=60)
    code, reason, _ = results[0]
    assert code == 1000, reason

    with server.client() as client:
        stream = _wait_analysis(client, "CAe2e0001")
        assert stream["state"] == "ended" and stream["end_reason"] == "stop"
        assert stream["agent_channel"] == 1 and stream["channels"] == ["inbound", "outbound"]
        assert stream["frames"]["duplicates"] > 0 and stream["frames"]["late"] == 0
        assert stream["filled_s"] == [0.0, 0.0]
        assert stream["audio_s"] == pytest.approx(audio.shape[1] / 8000, abs=0.02)
        assert stream["analysis_status"] == "completed", stream
        live = client.get(f"/v1/analyses/{stream['analysis_id']}").json()["report"]
        recorded = _wav(mulaw_roundtrip(audio), 8000)
        batch = _batch_report(client, recorded, "CAe2e0001.wav", agent_channel=1)
    assert live == batch

    assert events.content_type.startswith("text/event-stream")
    kinds = [e["event"] for e in events.events]
    assert kinds[-1] == "end" and kinds.count("live") >= 3
    assert events.events[-1]["analysis_id"] == stream["analysis_id"]
    last_live = [e for e in events.events if e["event"] == "live"][-1]
    assert set(last_live["speakers"]) == {"agent", "customer"}
    assert last_live["speakers"]["agent"]["channel"] == 1
    assert last_live["t_s"] == pytest.approx(audio.shape[1] / 8000, abs=0.05)
    shares = [last_live["speakers"][r]["talk_share"] for r in ("agent", "customer")]
    assert sum(shares) == pytest.approx(1.0, abs=0.002)
    assert last_live["thresholds"]["hold_s"] == 10.0
    seqs = [e["seq"] for e in events.events]
    assert seqs == sorted(seqs)


def test_raw_stream_with_auth_and_bad_messages(make_server: Any) -> None:
    server = make_server({"MIRRORLINE_API_KEYS": "live-key", "MIRRORLINE_STREAM_JITTER_MS": "0"})
    url = _ws(server, "/v1/streams/raw")
    audio = np.round(call_samples(12.0, sample_rate_hz=16000, seed=3).T * 32767).astype(np.int16)
    messages = raw_messages(audio, "raw-call-1", sample_rate_hz=16000, agent_channel=0)

    # no key, a wrong key: closed with 4401 before anything is kept
    code, reason, replies = send(url, messages[:3])
    assert code == 4401 and reason is not None and reason.startswith("auth.missing")
    assert json.loads(replies[-1])["code"] == "auth.missing"
    code, reason, _ = send(url + "?token=nope", messages[:3])
    assert code == 4401 and reason is not None and reason.startswith("auth.invalid")

    # the key as a header; the same id while live is refused; the stream's audio analysed
    blocker = threading.Event()

    def slow() -> Any:
        for message in messages:
            yield message
            if message is messages[5]:
                blocker.wait(30)

    results: list[Any] = []
    headers = [("Authorization", "Bearer live-key")]
    first = threading.Thread(target=lambda: results.append(send(url, slow(), headers=headers)))
    first.start()
    with server.client(headers={"X-API-Key": "live-key"}) as client:
        deadline = time.monotonic() + 30
        while client.get("/v1/streams/raw-call-1").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        code, reason, _ = send(url + "?token=live-key", messages[:2])
        assert code == 4409 and reason is not None and reason.startswith("stream.conflict")
        blocker.set()
        first.join(timeout=60)
        assert results[0][0] == 1000, results
        stream = _wait_analysis(client, "raw-call-1")
        assert stream["analysis_status"] == "completed" and stream["sample_rate_hz"] == 16000
        assert stream["protocol"] == "raw" and stream["channels"] == ["channel 0", "channel 1"]
        live = client.get(f"/v1/analyses/{stream['analysis_id']}").json()["report"]
        batch = _batch_report(client, _wav(audio, 16000), "raw-call-1.wav", agent_channel=0)
        assert live == batch
        # another owner's key does not see it; an unknown stream is a problem+json 404
        missing = client.get("/v1/streams/nope")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["code"] == "stream.not_found"
        assert client.get("/v1/streams/nope/events").status_code == 404

    key = "?token=live-key"
    bad = [
        ([b"\x00\x01"], 4400, "stream.bad_message"),  # binary before start
        (["{not json"], 4400, "stream.bad_message"),
        (
            [json.dumps({"id": "x", "encoding": "pcm16", "sample_rate_hz": 7000})],
            4415,
            "stream.unsupported_format",
        ),
        ([messages[0], "hello"], 4400, "stream.bad_message"),  # text that is not stop
    ]
    for sent, want_code, want in bad:
        code, reason, _ = send(url + key, sent)
        assert code == want_code and reason is not None and reason.startswith(want), reason
    with server.client(headers={"X-API-Key": "live-key"}) as client:
        # the stream cut by a bad message still ended (a moment of audio: nothing to analyse)
        ended = client.get("/v1/streams/raw-call-1").json()
        assert ended["state"] == "ended" and ended["end_reason"] == "error"
        assert ended["error"]["code"] == "stream.bad_message"
        metrics = client.get("/metrics").text
        assert 'mirrorline_stream_refusals_total{code="auth.missing"} 1.0' in metrics
        assert "mirrorline_streams_total" in metrics
    assert server.process is not None and server.process.poll() is None


def test_a_long_stream_computes_its_finished_minutes_ahead(make_server: Any) -> None:
    """A 130-s call: the stage 1 of its first two blocks (60 s each) runs while it streams
    (service.stage1_ahead), its live events then carry the mirroring of the call so far
    (service.live_mirroring), the job computes only the rest, and the report is still the
    batch report of the same audio; nothing is left behind."""
    server = make_server({"MIRRORLINE_STREAM_JITTER_MS": "0", "MIRRORLINE_LIVE_MIRRORING_S": "60"})
    url = _ws(server, "/v1/streams/raw")
    audio = np.round(call_samples(130.0, sample_rate_hz=8000, seed=5).T * 32767).astype(np.int16)
    messages = raw_messages(audio, "raw-long-1", sample_rate_hz=8000, agent_channel=1)
    subscribed: list[_Events] = []

    def paced() -> Any:
        # 62 s of audio (20-ms messages) fast, then 4x real time (events come with audio)
        # until an event carried the mirroring of the first minute, then fast again
        seen = False
        for k, message in enumerate(messages):
            if k % 50 == 0:
                time.sleep(0.01)
            if k >= 3100 and not seen:
                seen = bool(subscribed) and any(e.get("mirroring") for e in subscribed[0].events)
                time.sleep(0.005)
            yield message

    results: list[Any] = []
    sender = threading.Thread(target=lambda: results.append(send(url, paced())))
    sender.start()
    events = _subscribe(server, "raw-long-1")
    subscribed.append(events)
    sender.join(timeout=120)
    events.join(timeout=60)
    assert results[0][0] == 1000, results
    live_events = [e for e in events.events if e["event"] == "live"]
    with_mirroring = [e for e in live_events if e["mirroring"] is not None]
    # only events of audio past the first minute (and its 0.2-s context) can carry it
    assert with_mirroring and all(e["t_s"] >= 60.2 for e in with_mirroring)
    first = with_mirroring[0]["mirroring"]
    assert first["as_of_s"] == 60.0
    assert set(first["features"]) == set(get_args(FeatureName))
    assert set(first["scores"]) == {"tone", "tempo"}
    with server.client() as client:
        stream = _wait_analysis(client, "raw-long-1")
        assert stream["analysis_status"] == "completed"
        live = client.get(f"/v1/analyses/{stream['analysis_id']}").json()["report"]
        batch = _batch_report(client, _wav(audio, 8000), "raw-long-1.wav", agent_channel=1)
    assert live == batch
    ended = [
        json.loads(line)
        for line in server.log().splitlines()
        if '"stream ended"' in line and "raw-long-1" in line
    ]
    # both whole minutes while the call went on, its last 10 s while its last event was made
    assert [e["blocks_ahead"] for e in ended] == [3]
    leftovers = [p.name for p in (server.data_dir / "audio").iterdir()]
    assert not [name for name in leftovers if ".stage1-" in name]


def _live_events(server: Server, stream_id: str, audio: npt.NDArray[np.int16]) -> list[Any]:
    """Stream ``audio`` as Twilio would at ~5x real time; the live events it got."""
    messages = twilio_messages(audio, stream_id, shuffle_window=8, duplicate_every=11)
    url = _ws(server, "/v1/streams/twilio")

    def paced() -> Any:
        for message in messages:
            time.sleep(0.002)
            yield message

    results: list[Any] = []
    sender = threading.Thread(target=lambda: results.append(send(url, paced())))
    sender.start()
    events = _subscribe(server, stream_id)
    sender.join(timeout=120)
    events.join(timeout=60)
    assert results[0][0] == 1000, results
    return [e for e in events.events if e["event"] == "live"]


def test_cues_fire_through_the_server_on_a_planted_mismatch_and_not_on_a_calm_call(
    make_server: Any,
) -> None:
    """Pace: the agent (Twilio's outbound track) talks at 8 syllables a second, the
    customer at 3; a calm call has both at 4. Through a real server and Twilio messages
    (shuffled, duplicated), the pace mismatch fires for the agent after it held 5 s, and
    the calm call gets no cue."""
    server = make_server({"MIRRORLINE_CUE_HOLD_S": "5", "MIRRORLINE_STREAM_JITTER_MS": "200"})
    # channel 0 = inbound = customer, channel 1 = outbound = agent
    fast_agent = planted_call(alternating_turns((3.0, 8.0), 40.0), 40.0)
    events = _live_events(server, "CAcue00001", fast_agent)
    assert len(events) >= 30
    pace = [c for e in events for c in e["cues"] if c["cue"] == "pace_mismatch"]
    assert pace and {c["speaker"] for c in pace} == {"agent"}
    assert min(c["held_s"] for c in pace) >= 5.0 and pace[-1]["value"] > 1.25
    assert all(e["thresholds"]["hold_s"] == 5.0 for e in events)

    calm = planted_call(alternating_turns((4.0, 4.0), 40.0), 40.0)
    events = _live_events(server, "CAcue00002", calm)
    assert len(events) >= 30
    assert [c for e in events for c in e["cues"]] == []


def test_twilio_protocol_faults_close_cleanly(make_server: Any) -> None:
    server = make_server({"MIRRORLINE_STREAM_IDLE_TIMEOUT_S": "1"})
    url = _ws(server, "/v1/streams/twilio")
    audio = np.zeros((2, 1600), dtype=np.int16)
    messages = twilio_messages(audio, "CAfault1")
    media = [m for m in messages if '"media"' in m]
    cases = [
        ([media[0]], 4400, "stream.bad_message"),  # media before start
        ([b"binary"], 4400, "stream.bad_message"),
        (["[]"], 4400, "stream.bad_message"),
        ([messages[0], messages[1], messages[1]], 4400, "stream.bad_message"),  # two starts
        (
            [messages[1].replace('"sampleRate": 8000', '"sampleRate": 16000')],
            4415,
            "stream.unsupported_format",
        ),
        ([messages[0]], 4408, "stream.idle"),  # then nothing for 1 s
    ]
    for sent, want_code, want in cases:
        code, reason, _ = send(url, sent)
        assert code == want_code and reason is not None and reason.startswith(want), reason
    # dtmf, mark and unknown events are fine; a client that vanishes ends the stream
    extra = [
        json.dumps({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "5"}}),
        json.dumps({"event": "mark", "mark": {"name": "x"}}),
        json.dumps({"event": "something-new"}),
    ]
    from websockets.sync.client import connect

    with connect(url) as ws:
        for message in [*messages[:2], *extra, *media]:
            ws.send(message)
    with server.client() as client:
        deadline = time.monotonic() + 10
        while (stream := client.get("/v1/streams/CAfault1").json())["state"] != "ended":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert stream["end_reason"] == "disconnect"
        assert stream["audio_s"] == pytest.approx(0.2, abs=0.01)
        spec = client.get("/openapi.json").json()
        events = spec["paths"]["/v1/streams/{stream_id}/events"]["get"]
        assert "text/event-stream" in events["responses"]["200"]["content"]
        assert "/v1/streams/twilio" not in spec["paths"]
    assert server.process is not None and server.process.poll() is None


def test_audiohook_session_with_a_gap_and_a_websocket_subscriber(make_server: Any) -> None:
    from websockets.exceptions import ConnectionClosedOK
    from websockets.sync.client import connect

    server = make_server({"MIRRORLINE_API_KEYS": "ah-key"})
    url = _ws(server, "/v1/streams/audiohook")
    audio = np.round(call_samples(12.0, seed=5).T * 32767).astype(np.int16)
    conversation = "0b5a2c1e-9d4f-4c55-8a0e-3f6d2b7c9e11"
    messages = audiohook_messages(audio, conversation, frame_ms=100)
    gap_at = 30  # after 3 s of audio Genesys says 0.5 s were discarded
    discarded = json.loads(str(messages[0]))
    discarded.update(
        type="discarded", seq=999, parameters={"start": "PT3.0S", "discarded": "PT0.5S"}
    )
    messages.insert(1 + gap_at, json.dumps(discarded))

    # Genesys's own header; without it: disconnect (unauthorized), then 4401
    code, reason, replies = send(url, messages[:1])
    assert code == 4401
    assert json.loads(replies[-1])["type"] == "disconnect"
    assert json.loads(replies[-1])["parameters"]["reason"] == "unauthorized"

    headers = [("X-API-KEY", "ah-key"), ("Audiohook-Session-Id", str(uuid.uuid4()))]
    subscribed: list[dict[str, Any]] = []

    def subscribe() -> None:
        deadline = time.monotonic() + 30
        while True:
            with connect(_ws(server, f"/v1/streams/{conversation}/events?token=ah-key")) as ws:
                try:
                    for text in ws:
                        subscribed.append(json.loads(text))
                except Exception:
                    pass
                if ws.close_code == 4404 and time.monotonic() < deadline:
                    time.sleep(0.02)  # not started yet
                    continue
                return

    subscriber = threading.Thread(target=subscribe, daemon=True)
    subscriber.start()
    with connect(url, additional_headers=headers) as ws:
        ws.send(messages[0])
        reply = json.loads(ws.recv(timeout=10))
        assert reply["type"] == "opened" and reply["clientseq"] == 1
        assert reply["parameters"]["media"][0]["channels"] == ["external", "internal"]
        ping = json.loads(messages[0])
        ping.update(type="ping", seq=2, parameters={})
        ws.send(json.dumps(ping))
        assert json.loads(ws.recv(timeout=10))["type"] == "pong"
        for message in messages[1:]:
            time.sleep(0.002)
            ws.send(message)
        closed = json.loads(ws.recv(timeout=30))
        assert closed["type"] == "closed" and closed["seq"] == 3
        with pytest.raises(ConnectionClosedOK):
            ws.recv(timeout=10)
        assert ws.close_code == 1000
    subscriber.join(timeout=60)
    assert subscribed and subscribed[-1]["event"] == "end"
    assert any(e["event"] == "live" for e in subscribed)

    expected = np.concatenate(
        [audio[:, : 3 * 8000], np.zeros((2, 4000), np.int16), audio[:, 3 * 8000 :]], axis=1
    )
    with server.client(headers={"X-API-Key": "ah-key"}) as client:
        stream = _wait_analysis(client, conversation)
        assert stream["protocol"] == "audiohook" and stream["agent_channel"] == 1
        assert stream["channels"] == ["external", "internal"]
        assert stream["filled_s"] == [0.5, 0.5]
        live = client.get(f"/v1/analyses/{stream['analysis_id']}").json()["report"]
        batch = _batch_report(
            client, _wav(mulaw_roundtrip(expected), 8000), f"{conversation}.wav", agent_channel=1
        )
    assert live == batch


def test_limits_webhook_and_a_vanished_client(make_server: Any) -> None:
    """One stream at a time: a second is refused (4503) and counted; a client that vanishes
    without a close leaves no stream, file or slot behind; a stream's analysis fires the
    webhook a batch job fires; a malformed message is counted in /metrics."""
    from websockets.sync.client import connect

    from tests.service.conftest import WEBHOOK_SECRET
    from tests.service.test_jobs import Receiver

    server = make_server(
        {
            "MIRRORLINE_STREAM_MAX_CONCURRENT": "1",
            "MIRRORLINE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "MIRRORLINE_WEBHOOK_ALLOW_PRIVATE": "true",
        }
    )
    url = _ws(server, "/v1/streams/raw")
    audio = np.round(call_samples(4.0, sample_rate_hz=8000, seed=5).T * 32767).astype(np.int16)
    receiver = Receiver()
    try:
        start = json.loads(raw_messages(audio, "gone-1", sample_rate_hz=8000)[0])
        with connect(url) as ws:
            ws.send(json.dumps({**start, "callback_url": "ftp://nowhere"}))
            assert json.loads(ws.recv(timeout=10))["code"] == "request.invalid"
        with connect(url) as vanishing:
            vanishing.send(json.dumps(start))
            assert json.loads(vanishing.recv(timeout=10))["event"] == "started"
            for frame in raw_messages(audio, "gone-1", sample_rate_hz=8000)[1:-1]:
                vanishing.send(frame)
            # while it is live, the server is full
            busy = raw_messages(audio[:, :800], "other", sample_rate_hz=8000)
            code, reason, _ = send(url, busy)
            assert code == 4503 and reason is not None and reason.startswith("server.busy")
            vanishing.socket.shutdown(socket.SHUT_RDWR)  # gone: no close frame
        with server.client() as client:
            stream = _wait_analysis(client, "gone-1")
            assert stream["end_reason"] == "disconnect" and stream["analysis_status"] == "completed"
            assert stream["audio_s"] == pytest.approx(4.0, abs=0.02)
            assert not list((server.data_dir / "uploads").iterdir())  # the WAV became the job's
            # the slot is free again; this stream's analysis fires the webhook
            messages = raw_messages(audio, "hooked-1", sample_rate_hz=8000)
            first = json.loads(messages[0])
            messages[0] = json.dumps({**first, "callback_url": receiver.url})
            code, reason, replies = send(url, messages)
            assert code == 1000, reason
            analysis_id = json.loads(replies[-1])["analysis_id"]
            receiver.wait(1)
            headers, body, _ = receiver.calls[0]
            event = json.loads(body)
            assert event["type"] == "analysis.completed" and event["data"]["id"] == analysis_id
            assert headers["webhook-signature"].startswith("v1,")
            metrics = client.get("/metrics").text
        assert 'mirrorline_stream_refusals_total{code="server.busy"} 1.0' in metrics
        assert 'mirrorline_stream_refusals_total{code="request.invalid"} 1.0' in metrics
        assert 'mirrorline_streams_total{protocol="raw",reason="disconnect"} 1.0' in metrics
    finally:
        receiver.close()
