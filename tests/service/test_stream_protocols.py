"""service.stream_protocols: Twilio/Telnyx and raw message shapes, mu-law like FFmpeg."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import soundfile as sf

from service.replay import audiohook_messages, mulaw_encode, raw_messages, twilio_messages
from service.stream_protocols import (
    BadMessage,
    TwilioMedia,
    TwilioOther,
    TwilioStart,
    choose_audiohook_media,
    iso_seconds,
    mulaw_decode,
    parse_audiohook,
    parse_json,
    parse_raw_start,
    parse_twilio,
    raw_samples,
)


def test_mulaw_decoding_matches_the_wav_decoder() -> None:
    """Every mu-law byte, put into a real mu-law WAV and read back by libsndfile."""
    every_byte = bytes(range(256))
    header = io.BytesIO()
    with sf.SoundFile(header, "w", 8000, 1, subtype="ULAW", format="WAV") as f:
        f.write(np.zeros(256, dtype=np.int16))
    raw = bytearray(header.getvalue())
    data_at = raw.index(b"data") + 8
    raw[data_at : data_at + 256] = every_byte
    buffer = io.BytesIO(bytes(raw))
    reference, _ = sf.read(buffer, dtype="int16")
    assert np.array_equal(mulaw_decode(every_byte), reference)


def test_mulaw_encoding_round_trips_within_a_step() -> None:
    x = np.linspace(-32768, 32767, 5001).astype(np.int16)
    y = mulaw_decode(mulaw_encode(x)).astype(np.int32)
    step = np.maximum(8, np.abs(x.astype(np.int32)) // 16)
    assert (np.abs(y - x) <= step).all()
    assert mulaw_encode(mulaw_decode(bytes(range(256)))) == bytes(range(256)).replace(
        b"\x7f", b"\xff"
    )  # both zeros of mu-law encode as 0xff


def test_twilio_messages_parse() -> None:
    audio = np.zeros((2, 800), dtype=np.int16)
    messages = [json.loads(m) for m in twilio_messages(audio, "CA1", custom={"token": "k"})]
    kinds = [parse_twilio(m) for m in messages]
    assert isinstance(kinds[0], TwilioOther) and kinds[0].event == "connected"
    start = kinds[1]
    assert isinstance(start, TwilioStart)
    assert start.call_id == "CA1" and start.custom == {"token": "k"}
    assert start.tracks == ("inbound", "outbound")
    media = [k for k in kinds if isinstance(k, TwilioMedia)]
    assert len(media) == 10 and {m.track for m in media} == {"inbound", "outbound"}
    assert media[2].timestamp_ms == 20 and media[2].samples.shape == (160,)
    assert isinstance(kinds[-1], TwilioOther) and kinds[-1].event == "stop"


def test_telnyx_snake_case_start_is_taken() -> None:
    start = parse_twilio(
        {
            "event": "start",
            "start": {
                "call_control_id": "v3:abc-123",
                "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
                "custom_parameters": {"agent_track": "inbound"},
            },
            "stream_id": "s1",
        }
    )
    assert isinstance(start, TwilioStart) and start.call_id == "v3:abc-123"
    assert start.custom == {"agent_track": "inbound"}


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"no": "event"}, "stream.bad_message"),
        ({"event": "start"}, "stream.bad_message"),
        ({"event": "start", "start": {"callSid": "bad id!"}}, "stream.bad_message"),
        (
            {"event": "start", "start": {"callSid": "CA1", "mediaFormat": {"sampleRate": 16000}}},
            "stream.unsupported_format",
        ),
        ({"event": "media", "media": {"timestamp": "x", "payload": ""}}, "stream.bad_message"),
        ({"event": "media", "media": {"timestamp": 0, "payload": "%%%"}}, "stream.bad_message"),
        (
            {"event": "media", "media": {"track": "both", "timestamp": 0, "payload": ""}},
            "stream.bad_message",
        ),
        ({"event": "media", "media": {"timestamp": -20, "payload": ""}}, "stream.bad_message"),
    ],
)
def test_bad_twilio_messages(message: dict[str, object], code: str) -> None:
    with pytest.raises(BadMessage) as caught:
        parse_twilio(message)
    assert caught.value.code == code


def test_unknown_events_are_not_errors() -> None:
    assert parse_twilio({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "1"}}) == (
        TwilioOther("dtmf")
    )
    media = parse_twilio(
        {"event": "media", "media": {"track": "inbound", "timestamp": 40, "payload": "/w=="}}
    )
    assert isinstance(media, TwilioMedia) and media.chunk is None
    assert base64.b64decode("/w==") == b"\xff" and media.samples.tolist() == [0]


@pytest.mark.parametrize("text", ["not json", "[1]", "x" * 300_000])
def test_json_messages(text: str) -> None:
    with pytest.raises(BadMessage):
        parse_json(text)


def test_raw_start_and_frames() -> None:
    audio = np.array([[1, 2, 3], [-1, -2, -3]], dtype=np.int16)
    start_text, frame, stop = raw_messages(audio, "call-1", sample_rate_hz=16000, frame_ms=20)
    start = parse_raw_start(parse_json(start_text))
    assert (start.id, start.encoding, start.sample_rate_hz, start.agent_channel) == (
        "call-1",
        "pcm16",
        16000,
        0,
    )
    assert isinstance(frame, bytes) and np.array_equal(raw_samples(frame, "pcm16"), audio)
    assert parse_json(stop) == {"event": "stop"}
    mulaw = raw_messages(audio, "c", sample_rate_hz=8000, encoding="mulaw")[1]
    assert isinstance(mulaw, bytes) and raw_samples(mulaw, "mulaw").shape == (2, 3)


@pytest.mark.parametrize(
    "message",
    [
        {"id": "a", "encoding": "pcm24", "sample_rate_hz": 8000},
        {"id": "a", "encoding": "pcm16", "sample_rate_hz": 7000},
        {"id": "a", "encoding": "pcm16", "sample_rate_hz": True},
        {"id": "", "encoding": "pcm16", "sample_rate_hz": 8000},
        {"id": "a", "encoding": "pcm16", "sample_rate_hz": 8000, "agent_channel": 2},
        {"event": "media", "id": "a", "encoding": "pcm16", "sample_rate_hz": 8000},
    ],
)
def test_bad_raw_start(message: dict[str, object]) -> None:
    with pytest.raises(BadMessage):
        parse_raw_start(message)


def test_audiohook_open_picks_the_stereo_medium() -> None:
    audio = np.zeros((2, 800), dtype=np.int16)
    messages = audiohook_messages(audio, "conv-1", frame_ms=20)
    assert len(messages) == 2 + 5 and all(isinstance(m, bytes) for m in messages[1:-1])
    opened = parse_audiohook(parse_json(messages[0]))
    assert (opened.type, opened.seq, opened.position_s) == ("open", 1, 0.0)
    chosen = choose_audiohook_media(opened.parameters)
    assert chosen.conversation_id == "conv-1" and chosen.encoding == "mulaw"
    assert chosen.channels == ("external", "internal")
    close = parse_audiohook(parse_json(messages[-1]))
    assert close.type == "close" and close.position_s == 0.1
    mono = {**opened.parameters, "media": [opened.parameters["media"][1]]}
    with pytest.raises(BadMessage) as caught:
        choose_audiohook_media(mono)
    assert caught.value.code == "stream.unsupported_format"


@pytest.mark.parametrize(
    "message",
    [
        {"version": "1", "id": "s", "type": "open", "seq": 1},
        {"version": "2", "type": "open", "seq": 1},
        {"version": "2", "id": "s", "type": "open", "seq": "x"},
        {"version": "2", "id": "s", "type": "ping", "seq": 1, "parameters": []},
        {"version": "2", "id": "s", "type": "ping", "seq": 1, "position": "1.5"},
    ],
)
def test_bad_audiohook_messages(message: dict[str, object]) -> None:
    with pytest.raises(BadMessage):
        parse_audiohook(message)


def test_iso_durations() -> None:
    assert iso_seconds("PT0S", "x") == 0.0 and iso_seconds("PT12.25S", "x") == 12.25
    for bad in ("P1D", "PT-1S", 3, None):
        with pytest.raises(BadMessage):
            iso_seconds(bad, "x")
