"""Send a recording as a call platform would: the messages of a live stream, built from
stereo audio (for tests, demos and ``bench/live.py``; ``mirrorline replay`` will use it).

- :func:`twilio_messages`: Twilio Media Streams JSON (connected, start, media per 20 ms and
  track, stop), optionally with frames reordered within a window and some sent twice;
- :func:`audiohook_messages`: a Genesys AudioHook v2 session (open, binary stereo PCMU,
  close);
- :func:`raw_messages`: the raw protocol's start message and binary frames;
- :func:`send`: send them over a WebSocket (``websockets``' synchronous client), paced in
  real time or as fast as possible.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

TWILIO_FRAME_MS = 20
TWILIO_RATE_HZ = 8000


def mulaw_encode(samples: npt.ArrayLike) -> bytes:
    """int16 samples -> G.711 mu-law bytes."""
    x = np.asarray(samples, dtype=np.int32)
    sign = (x < 0).astype(np.int32)
    magnitude = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 7, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~((sign << 7) | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def twilio_messages(
    audio: npt.NDArray[np.int16],
    call_sid: str,
    *,
    custom: dict[str, str] | None = None,
    shuffle_window: int = 0,
    duplicate_every: int = 0,
    seed: int = 0,
) -> list[str]:
    """The messages of a Twilio stream of ``audio`` (2, n) int16 at 8 kHz: channel 0 is the
    inbound track, channel 1 the outbound track.

    ``shuffle_window`` > 1 shuffles the media messages within consecutive groups of that
    many; ``duplicate_every`` > 0 sends every that-many-th media message twice (the copy a
    few messages later).
    """
    stream_sid = "MZ" + uuid.uuid4().hex
    account = "AC" + "0" * 32
    out = [json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})]
    out.append(
        json.dumps(
            {
                "event": "start",
                "sequenceNumber": "1",
                "start": {
                    "accountSid": account,
                    "streamSid": stream_sid,
                    "callSid": call_sid,
                    "tracks": ["inbound", "outbound"],
                    "customParameters": custom or {},
                    "mediaFormat": {
                        "encoding": "audio/x-mulaw",
                        "sampleRate": TWILIO_RATE_HZ,
                        "channels": 1,
                    },
                },
                "streamSid": stream_sid,
            }
        )
    )
    step = TWILIO_RATE_HZ * TWILIO_FRAME_MS // 1000
    media: list[dict[str, Any]] = []
    for i, begin in enumerate(range(0, audio.shape[1], step)):
        for channel, track in ((0, "inbound"), (1, "outbound")):
            payload = base64.b64encode(mulaw_encode(audio[channel, begin : begin + step]))
            media.append(
                {
                    "event": "media",
                    "media": {
                        "track": track,
                        "chunk": str(i + 1),
                        "timestamp": str(i * TWILIO_FRAME_MS),
                        "payload": payload.decode(),
                    },
                    "streamSid": stream_sid,
                }
            )
    rng = np.random.default_rng(seed)
    if shuffle_window > 1:
        for g in range(0, len(media), shuffle_window):
            group = media[g : g + shuffle_window]
            order = rng.permutation(len(group))
            media[g : g + shuffle_window] = [group[k] for k in order]
    if duplicate_every > 0:
        copies = media[::duplicate_every]
        for k, copy in enumerate(copies):
            media.insert(min(len(media), (k + 1) * duplicate_every + k + 3), copy)
    for k, message in enumerate(media):
        message["sequenceNumber"] = str(k + 2)
        out.append(json.dumps(message))
    out.append(
        json.dumps(
            {
                "event": "stop",
                "sequenceNumber": str(len(media) + 2),
                "stop": {"accountSid": account, "callSid": call_sid},
                "streamSid": stream_sid,
            }
        )
    )
    return out


def mulaw_roundtrip(audio: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """What a mu-law stream of ``audio`` carries, decoded: the reference for comparisons."""
    from service.stream_protocols import mulaw_decode

    return np.stack([mulaw_decode(mulaw_encode(channel)) for channel in audio])


def raw_messages(
    audio: npt.NDArray[np.int16],
    stream_id: str,
    *,
    sample_rate_hz: int,
    agent_channel: int = 0,
    encoding: Literal["pcm16", "mulaw"] = "pcm16",
    frame_ms: int = 20,
) -> list[str | bytes]:
    """The raw protocol: start, binary interleaved frames of ``frame_ms``, stop."""
    out: list[str | bytes] = [
        json.dumps(
            {
                "event": "start",
                "id": stream_id,
                "encoding": encoding,
                "sample_rate_hz": sample_rate_hz,
                "agent_channel": agent_channel,
            }
        )
    ]
    step = max(1, sample_rate_hz * frame_ms // 1000)
    for begin in range(0, audio.shape[1], step):
        interleaved = np.ascontiguousarray(audio[:, begin : begin + step].T).reshape(-1)
        if encoding == "pcm16":
            out.append(interleaved.astype("<i2").tobytes())
        else:
            out.append(mulaw_encode(interleaved))
    out.append(json.dumps({"event": "stop"}))
    return out


def audiohook_messages(
    audio: npt.NDArray[np.int16],
    conversation_id: str,
    *,
    frame_ms: int = 100,
    session_id: str | None = None,
) -> list[str | bytes]:
    """A Genesys AudioHook v2 session of ``audio`` (2, n) int16 at 8 kHz: ``open`` offering
    stereo PCMU with channel 0 ``external`` (the customer) and channel 1 ``internal`` (the
    agent), binary frames of ``frame_ms``, then ``close``."""
    session = session_id or str(uuid.uuid4())
    seq = 0
    sent_s = 0.0

    def message(kind: str, parameters: dict[str, Any]) -> str:
        nonlocal seq
        seq += 1
        return json.dumps(
            {
                "version": "2",
                "id": session,
                "type": kind,
                "seq": seq,
                "serverseq": 0,
                "position": f"PT{sent_s:.2f}S",
                "parameters": parameters,
            }
        )

    medium = {"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000}
    out: list[str | bytes] = [
        message(
            "open",
            {
                "organizationId": str(uuid.uuid4()),
                "conversationId": conversation_id,
                "participant": {"id": str(uuid.uuid4()), "ani": "", "aniName": "", "dnis": ""},
                "media": [medium, {**medium, "channels": ["external"]}],
                "language": "en-US",
            },
        )
    ]
    step = TWILIO_RATE_HZ * frame_ms // 1000
    for begin in range(0, audio.shape[1], step):
        interleaved = np.ascontiguousarray(audio[:, begin : begin + step].T).reshape(-1)
        out.append(mulaw_encode(interleaved))
        sent_s += min(step, audio.shape[1] - begin) / TWILIO_RATE_HZ
    out.append(message("close", {"reason": "end"}))
    return out


def send(
    url: str,
    messages: Iterable[str | bytes],
    *,
    headers: Sequence[tuple[str, str]] = (),
    realtime_s_per_message: float = 0.0,
) -> tuple[int | None, str | None, list[str]]:
    """Send ``messages`` over a WebSocket, then wait for the server to close.

    Returns ``(close code, close reason, text messages received)``. With
    ``realtime_s_per_message`` > 0, each message is sent that long after the previous one
    (20 ms frames of two tracks: 0.01).
    """
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    received: list[str] = []
    with connect(url, additional_headers=list(headers), max_size=None) as ws:
        started = time.perf_counter()
        try:
            for k, message in enumerate(messages):
                if realtime_s_per_message > 0:
                    delay = started + k * realtime_s_per_message - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                ws.send(message)
        except ConnectionClosed:
            pass  # the server closed while we sent: what it said before is still read below
        try:
            while True:
                reply = ws.recv(timeout=60)
                if isinstance(reply, str):
                    received.append(reply)
        except ConnectionClosed:
            pass
        except TimeoutError:
            ws.close()
        code = ws.close_code
        reason = ws.close_reason
    return code, reason, received
