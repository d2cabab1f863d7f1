"""The message shapes of the streaming protocols, parsed into plain values (no web framework).

- **Twilio Media Streams** (and Telnyx, which sends the same events with snake_case
  names): JSON text messages ``connected``, ``start``, ``media``, ``mark``, ``dtmf``,
  ``stop``. Audio is base64 mu-law, 8 kHz mono per track, placed by ``media.timestamp``
  (ms from the start of the stream).
- **Genesys AudioHook v2**: JSON text messages with ``version`` "2", ``id`` (session),
  ``type``, ``seq``, ``serverseq``, ``position``, ``parameters`` (``open``, ``ping``,
  ``paused``/``resumed``, ``discarded``, ``update``, ``close``, ``error``); audio as binary
  frames of interleaved 2-channel PCMU (or L16) at 8 kHz, channels as ``open`` offered
  them (``external`` the customer, ``internal`` the agent).
- **raw**: one JSON ``start`` text message (``id``, ``encoding`` pcm16|mulaw,
  ``sample_rate_hz``, ``agent_channel``), then binary messages of interleaved stereo
  samples, then optionally ``{"event": "stop"}``.

A message that is not what the protocol says raises :class:`BadMessage` with a stable code;
the route closes the socket with it (docs/live.md lists the codes).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

#: Stream ids (a call id): letters, digits and ``_.:-``, 1-128 characters.
STREAM_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
TWILIO_RATE_HZ = 8000
RAW_RATES_HZ = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)
MAX_TEXT_BYTES = 256 * 1024


class BadMessage(Exception):
    """A message the protocol does not allow; ``code`` is stable, ``detail`` says why."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _mulaw_table() -> npt.NDArray[np.int16]:
    """G.711 mu-law byte -> 16-bit linear sample (the table FFmpeg's pcm_mulaw uses)."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


MULAW_TO_PCM16 = _mulaw_table()


def mulaw_decode(data: bytes) -> npt.NDArray[np.int16]:
    """mu-law bytes -> int16 samples."""
    return MULAW_TO_PCM16[np.frombuffer(data, dtype=np.uint8)]


def parse_json(text: str | bytes) -> dict[str, Any]:
    """One JSON object message, or BadMessage."""
    if len(text) > MAX_TEXT_BYTES:
        raise BadMessage("stream.bad_message", f"text message over {MAX_TEXT_BYTES} bytes")
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise BadMessage("stream.bad_message", "a text message is not JSON") from None
    if not isinstance(value, dict):
        raise BadMessage("stream.bad_message", "a text message is not a JSON object")
    return value


def stream_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not STREAM_ID.match(value):
        raise BadMessage(
            "stream.bad_message",
            f"{where} must be 1-128 letters, digits or _.:- (the call id)",
        )
    return value


def _pick(obj: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in obj:
            return obj[name]
    return None


def _int(value: Any, where: str) -> int:
    """Twilio sends numbers as strings ("chunk": "2"); both forms are taken."""
    if isinstance(value, bool):
        raise BadMessage("stream.bad_message", f"{where} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise BadMessage("stream.bad_message", f"{where} must be an integer")


# -- Twilio / Telnyx ---------------------------------------------------------------------


@dataclass(frozen=True)
class TwilioStart:
    call_id: str
    stream_sid: str | None
    tracks: tuple[str, ...]
    custom: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TwilioMedia:
    track: Literal["inbound", "outbound"]
    chunk: int | None
    timestamp_ms: int
    samples: npt.NDArray[np.int16]


@dataclass(frozen=True)
class TwilioOther:
    event: str  # connected, mark, dtmf, stop, or an event this server does not use


TwilioMessage = TwilioStart | TwilioMedia | TwilioOther

_ENCODINGS_MULAW = {"audio/x-mulaw", "pcmu", "mulaw", "audio/pcmu"}


def parse_twilio(message: dict[str, Any]) -> TwilioMessage:
    """One Twilio (or Telnyx) Media Streams message."""
    event = message.get("event")
    if not isinstance(event, str):
        raise BadMessage("stream.bad_message", "a message without an 'event' string")
    if event == "start":
        start = message.get("start")
        if not isinstance(start, dict):
            raise BadMessage("stream.bad_message", "start: no 'start' object")
        call = _pick(start, "callSid", "call_control_id", "call_sid")
        call_id = stream_id(call, "start.callSid")
        fmt = _pick(start, "mediaFormat", "media_format") or {}
        if not isinstance(fmt, dict):
            raise BadMessage("stream.bad_message", "start.mediaFormat must be an object")
        encoding = str(fmt.get("encoding", "audio/x-mulaw")).lower()
        rate = fmt.get("sampleRate", fmt.get("sample_rate", TWILIO_RATE_HZ))
        if encoding not in _ENCODINGS_MULAW or _int(rate, "sampleRate") != TWILIO_RATE_HZ:
            raise BadMessage(
                "stream.unsupported_format",
                f"mediaFormat {encoding} at {rate} Hz; this endpoint takes mu-law 8000 Hz",
            )
        tracks = start.get("tracks", ["inbound", "outbound"])
        if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
            raise BadMessage("stream.bad_message", "start.tracks must be a list of strings")
        custom = _pick(start, "customParameters", "custom_parameters") or {}
        if not isinstance(custom, dict):
            raise BadMessage("stream.bad_message", "start.customParameters must be an object")
        sid = _pick(message, "streamSid", "stream_id") or _pick(start, "streamSid")
        return TwilioStart(
            call_id=call_id,
            stream_sid=sid if isinstance(sid, str) else None,
            tracks=tuple(t.removesuffix("_track") for t in tracks),
            custom={str(k): str(v) for k, v in custom.items()},
        )
    if event == "media":
        media = message.get("media")
        if not isinstance(media, dict):
            raise BadMessage("stream.bad_message", "media: no 'media' object")
        track = str(media.get("track", "inbound")).removesuffix("_track")
        if track not in ("inbound", "outbound"):
            raise BadMessage("stream.bad_message", "media.track must be inbound or outbound")
        timestamp = _int(media.get("timestamp"), "media.timestamp")
        if timestamp < 0:
            raise BadMessage("stream.bad_message", "media.timestamp must be >= 0")
        chunk = None if media.get("chunk") is None else _int(media["chunk"], "media.chunk")
        payload = media.get("payload")
        if not isinstance(payload, str):
            raise BadMessage("stream.bad_message", "media.payload must be a base64 string")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise BadMessage("stream.bad_message", "media.payload is not base64") from None
        return TwilioMedia(
            track=track,  # type: ignore[arg-type]
            chunk=chunk,
            timestamp_ms=timestamp,
            samples=mulaw_decode(data),
        )
    return TwilioOther(event=event)


# -- raw --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawStart:
    id: str
    encoding: Literal["pcm16", "mulaw"]
    sample_rate_hz: int
    agent_channel: Literal[0, 1]
    token: str | None = None
    callback_url: Any = None  # checked where the stream opens (service.webhooks)

    @property
    def bytes_per_frame(self) -> int:
        """Bytes of one stereo sample frame."""
        return 4 if self.encoding == "pcm16" else 2


def parse_raw_start(message: dict[str, Any]) -> RawStart:
    """The raw protocol's first message."""
    if message.get("event", "start") != "start":
        raise BadMessage("stream.bad_message", "the first message must be the start message")
    sid = stream_id(message.get("id"), "id")
    encoding = message.get("encoding")
    if encoding not in ("pcm16", "mulaw"):
        raise BadMessage("stream.unsupported_format", "encoding must be pcm16 or mulaw")
    rate = message.get("sample_rate_hz")
    if isinstance(rate, bool) or not isinstance(rate, int) or rate not in RAW_RATES_HZ:
        raise BadMessage(
            "stream.unsupported_format",
            "sample_rate_hz must be one of " + ", ".join(str(r) for r in RAW_RATES_HZ),
        )
    agent = message.get("agent_channel", 0)
    if agent not in (0, 1) or isinstance(agent, bool):
        raise BadMessage("stream.bad_message", "agent_channel must be 0 or 1")
    token = message.get("token")
    return RawStart(
        id=sid,
        encoding=encoding,
        sample_rate_hz=rate,
        agent_channel=agent,
        token=token if isinstance(token, str) else None,
        callback_url=message.get("callback_url"),
    )


def raw_samples(data: bytes, encoding: Literal["pcm16", "mulaw"]) -> npt.NDArray[np.int16]:
    """Interleaved stereo bytes (whole sample frames) -> int16 array of shape (2, n)."""
    if encoding == "pcm16":
        flat = np.frombuffer(data, dtype="<i2").astype(np.int16)
    else:
        flat = mulaw_decode(data)
    return flat.reshape(-1, 2).T.copy()


# -- Genesys AudioHook v2 ----------------------------------------------------------------

AUDIOHOOK_RATE_HZ = 8000
_DURATION = re.compile(r"^PT(\d+(?:\.\d+)?)S$")


def iso_seconds(value: Any, where: str) -> float:
    """An AudioHook duration ``PT1.25S`` in seconds."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise BadMessage("stream.bad_message", f"{where} must be a duration like PT1.5S")
    return float(match.group(1))


@dataclass(frozen=True)
class AudioHookMessage:
    type: str
    id: str
    seq: int
    position_s: float | None
    parameters: dict[str, Any]


def parse_audiohook(message: dict[str, Any]) -> AudioHookMessage:
    """One AudioHook v2 client text message (version, id, type, seq, position, parameters)."""
    if str(message.get("version")) != "2":
        raise BadMessage("stream.bad_message", "AudioHook messages have version '2'")
    kind = message.get("type")
    session = message.get("id")
    if not isinstance(kind, str) or not isinstance(session, str):
        raise BadMessage("stream.bad_message", "an AudioHook message needs 'type' and 'id'")
    seq = _int(message.get("seq"), "seq")
    parameters = message.get("parameters", {})
    if not isinstance(parameters, dict):
        raise BadMessage("stream.bad_message", "parameters must be an object")
    position = message.get("position")
    return AudioHookMessage(
        type=kind,
        id=session,
        seq=seq,
        position_s=None if position is None else iso_seconds(position, "position"),
        parameters=parameters,
    )


@dataclass(frozen=True)
class AudioHookOpen:
    conversation_id: str
    media: dict[str, Any]  # the offered medium chosen: answered in 'opened'
    channels: tuple[str, ...]
    encoding: Literal["pcm16", "mulaw"]


def choose_audiohook_media(parameters: dict[str, Any]) -> AudioHookOpen:
    """The conversation id and the stereo medium to take from an ``open`` message."""
    conversation = stream_id(parameters.get("conversationId"), "parameters.conversationId")
    offered = parameters.get("media")
    if not isinstance(offered, list):
        raise BadMessage("stream.bad_message", "parameters.media must be a list")
    for medium in offered:
        if not isinstance(medium, dict):
            continue
        channels = medium.get("channels")
        if (
            medium.get("type") == "audio"
            and medium.get("format") in ("PCMU", "L16")
            and medium.get("rate") == AUDIOHOOK_RATE_HZ
            and isinstance(channels, list)
            and sorted(channels) == ["external", "internal"]
        ):
            encoding: Literal["pcm16", "mulaw"] = "mulaw" if medium["format"] == "PCMU" else "pcm16"
            return AudioHookOpen(conversation, medium, tuple(channels), encoding)
    raise BadMessage(
        "stream.unsupported_format",
        "no offered medium is 8000 Hz PCMU or L16 with both channels (external, internal)",
    )
