"""Live streams: ``WS /v1/streams/twilio``, ``WS /v1/streams/raw`` (audio in),
``GET /v1/streams/{id}`` (state, then the analysis) and ``GET /v1/streams/{id}/events``
(Server-Sent Events). Protocols, close codes and cues: docs/live.md.

Thin: messages are parsed by ``service.stream_protocols``, audio placed and analysed by
``service.streams``. A bad message never raises out of a route: the socket is closed with
a 44xx code whose reason starts with the error code, and the audio received so far is
still analysed. ``service.app.create_app`` includes :data:`router`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, WebSocket
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocketState

from service.auth import header_token, owner_for
from service.problems import Problem
from service.schemas import StreamOut
from service.stream_protocols import (
    TWILIO_RATE_HZ,
    BadMessage,
    TwilioMedia,
    TwilioOther,
    TwilioStart,
    parse_json,
    parse_raw_start,
    parse_twilio,
    raw_samples,
)
from service.streams import EndReason, LiveStream, StreamRefused, StreamRegistry

log = logging.getLogger("mirrorline.streams")

router = APIRouter()

#: WebSocket close codes (4000 + the HTTP status the same error has elsewhere).
CLOSE_NORMAL = 1000
CLOSE_INTERNAL = 1011
CLOSE_CODES = {
    "stream.bad_message": 4400,
    "stream.unsupported_format": 4415,
    "auth.missing": 4401,
    "auth.invalid": 4401,
    "stream.idle": 4408,
    "stream.conflict": 4409,
    "stream.too_long": 4413,
    "server.busy": 4503,
    "server.not_ready": 4503,
}
SSE_KEEPALIVE_S = 15.0


class _Closed(Exception):
    """End the connection: close ``code`` with ``error`` (None: a normal close)."""

    def __init__(self, reason: EndReason, code: int, error: dict[str, str] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.error = error


def _error(code: str, detail: str) -> _Closed:
    return _Closed("error", CLOSE_CODES.get(code, 4400), {"code": code, "message": detail})


async def _receive(ws: WebSocket, timeout_s: float) -> dict[str, Any]:
    try:
        message = await asyncio.wait_for(ws.receive(), timeout_s)
    except TimeoutError:
        raise _Closed(
            "idle",
            CLOSE_CODES["stream.idle"],
            {"code": "stream.idle", "message": f"nothing received for {timeout_s:g} s"},
        ) from None
    if message["type"] == "websocket.disconnect":
        raise _Closed("disconnect", CLOSE_NORMAL)
    return dict(message)


def _owner(ws: WebSocket, token: str | None) -> str:
    keys = [k.encode() for k in ws.app.state.settings.api_keys]
    owner = owner_for(keys, token)
    if isinstance(owner, Problem):
        raise _error(
            owner.code,
            "send the API key as Authorization: Bearer, X-API-Key, a token query parameter "
            "or a token custom parameter"
            if owner.code == "auth.missing"
            else "the API key is not valid",
        )
    return owner


def _given_token(ws: WebSocket) -> str | None:
    headers = {k.lower(): v for k, v in ws.headers.items()}
    return header_token(headers) or ws.query_params.get("token") or None


async def _finish(
    ws: WebSocket,
    registry: StreamRegistry,
    stream: LiveStream | None,
    closed: _Closed,
    *,
    tell: bool,
) -> None:
    """End the stream (its audio becomes an analysis) and close the socket."""
    if closed.error is not None:
        registry.metrics.stream_refusals.labels(closed.error["code"]).inc()
        log.info("stream closed: %s", closed.error["code"], extra={"detail": closed.error})
    if stream is not None:
        await registry.end(stream, closed.reason, closed.error)
    if ws.client_state != WebSocketState.CONNECTED or closed.reason == "disconnect":
        return
    try:
        if tell and closed.error is not None:
            await ws.send_text(json.dumps({"event": "error", **closed.error}))
        reason = "" if closed.error is None else f"{closed.error['code']}: "
        reason += "" if closed.error is None else closed.error["message"]
        await ws.close(code=closed.code, reason=reason.encode()[:120].decode(errors="ignore"))
    except Exception:  # the client went away meanwhile
        pass


@router.websocket("/v1/streams/twilio")
async def twilio_stream(ws: WebSocket) -> None:
    """Twilio Media Streams (``<Stream track="both_tracks">``) and Telnyx media streaming:
    channel 0 is the inbound track, channel 1 the outbound track."""
    registry: StreamRegistry = ws.app.state.streams
    settings = registry.settings
    await ws.accept()
    stream: LiveStream | None = None
    token = _given_token(ws)
    try:
        if token is not None:
            _owner(ws, token)  # a wrong key is refused before anything else
        while True:
            message = await _receive(ws, settings.stream_idle_timeout_s)
            if message.get("text") is None:
                raise BadMessage("stream.bad_message", "binary message: Twilio sends JSON text")
            parsed = parse_twilio(parse_json(message["text"]))
            if isinstance(parsed, TwilioMedia):
                if stream is None:
                    raise BadMessage("stream.bad_message", "media before start")
                channel = 0 if parsed.track == "inbound" else 1
                start = parsed.timestamp_ms * TWILIO_RATE_HZ // 1000
                registry.push(stream, channel, start, parsed.samples)
                if not registry.release(stream):
                    raise _too_long(settings.max_duration_s)
            elif isinstance(parsed, TwilioStart):
                if stream is not None:
                    raise BadMessage("stream.bad_message", "a second start message")
                owner = _owner(ws, token or parsed.custom.get("token"))
                track = parsed.custom.get("agent_track", settings.stream_agent_track)
                if track not in ("inbound", "outbound"):
                    raise BadMessage(
                        "stream.bad_message", "customParameters.agent_track: inbound or outbound"
                    )
                stream = registry.open(
                    parsed.call_id,
                    owner,
                    "twilio",
                    sample_rate_hz=TWILIO_RATE_HZ,
                    agent_channel=0 if track == "inbound" else 1,
                    channel_names=("inbound", "outbound"),
                )
            elif isinstance(parsed, TwilioOther) and parsed.event == "stop":
                raise _Closed("stop", CLOSE_NORMAL)
            # connected, mark, dtmf and events this server does not use: nothing to do
    except _Closed as closed:
        await _finish(ws, registry, stream, closed, tell=False)
    except BadMessage as exc:
        await _finish(ws, registry, stream, _error(exc.code, exc.detail), tell=False)
    except StreamRefused as exc:
        await _finish(ws, registry, stream, _refused(exc), tell=False)
    except Exception:
        log.exception("twilio stream failed")
        await _finish(ws, registry, stream, _internal(), tell=False)


@router.websocket("/v1/streams/raw")
async def raw_stream(ws: WebSocket) -> None:
    """A JSON start message, then binary interleaved stereo frames, then ``stop``."""
    registry: StreamRegistry = ws.app.state.streams
    settings = registry.settings
    await ws.accept()
    stream: LiveStream | None = None
    token = _given_token(ws)
    try:
        if token is not None:
            _owner(ws, token)
        message = await _receive(ws, settings.stream_idle_timeout_s)
        if message.get("text") is None:
            raise BadMessage("stream.bad_message", "the first message must be the JSON start")
        start = parse_raw_start(parse_json(message["text"]))
        owner = _owner(ws, token or start.token)
        stream = registry.open(
            start.id,
            owner,
            "raw",
            sample_rate_hz=start.sample_rate_hz,
            agent_channel=start.agent_channel,
            channel_names=("channel 0", "channel 1"),
        )
        await ws.send_text(json.dumps({"event": "started", "id": start.id}))
        position = 0
        rest = b""
        while True:
            message = await _receive(ws, settings.stream_idle_timeout_s)
            if message.get("bytes") is not None:
                data = rest + message["bytes"]
                whole = len(data) - len(data) % start.bytes_per_frame
                rest = data[whole:]
                samples = raw_samples(data[:whole], start.encoding)
                if samples.shape[1]:
                    registry.push(stream, 0, position, samples[0])
                    registry.push(stream, 1, position, samples[1])
                    position += samples.shape[1]
                    if not registry.release(stream):
                        raise _too_long(settings.max_duration_s)
                continue
            event = parse_json(message.get("text") or "").get("event")
            if event == "stop":
                raise _Closed("stop", CLOSE_NORMAL)
            raise BadMessage("stream.bad_message", "after start: binary audio or a stop event")
    except _Closed as closed:
        await _finish(ws, registry, stream, closed, tell=True)
    except BadMessage as exc:
        await _finish(ws, registry, stream, _error(exc.code, exc.detail), tell=True)
    except StreamRefused as exc:
        await _finish(ws, registry, stream, _refused(exc), tell=True)
    except Exception:
        log.exception("raw stream failed")
        await _finish(ws, registry, stream, _internal(), tell=True)


def _too_long(limit_s: float) -> _Closed:
    return _Closed(
        "too_long",
        CLOSE_CODES["stream.too_long"],
        {
            "code": "stream.too_long",
            "message": f"the call reached {limit_s:.0f} s (MIRRORLINE_MAX_DURATION_S); "
            "what came before is analysed",
        },
    )


def _refused(exc: StreamRefused) -> _Closed:
    return _Closed("error", exc.close_code, {"code": exc.code, "message": exc.detail})


def _internal() -> _Closed:
    return _Closed(
        "error", CLOSE_INTERNAL, {"code": "internal", "message": "an internal error occurred"}
    )


# -- HTTP -------------------------------------------------------------------------------------


def _find(request: Request, stream_id: str) -> tuple[StreamRegistry, LiveStream]:
    registry: StreamRegistry = request.app.state.streams
    stream = registry.get(stream_id, request.scope["state"]["owner"])
    if stream is None:
        raise Problem(
            "stream.not_found",
            f"no stream {stream_id!r} (never started here, or ended long ago)",
        )
    return registry, stream


@router.get(
    "/v1/streams/{stream_id}",
    tags=["streams"],
    summary="A live stream's state; once ended, the analysis of the whole call",
    response_model=StreamOut,
)
async def read_stream(request: Request, stream_id: str) -> StreamOut:
    registry, stream = _find(request, stream_id)
    return StreamOut.model_validate(registry.describe(stream))


def _sse(event: dict[str, Any]) -> bytes:
    data = json.dumps(event, separators=(",", ":"))
    return f"id: {event['seq']}\nevent: {event['event']}\ndata: {data}\n\n".encode()


@router.get(
    "/v1/streams/{stream_id}/events",
    tags=["streams"],
    summary="Live measures and cues of a stream as Server-Sent Events (one per second of audio)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "text/event-stream: 'live' events (speakers, cues, thresholds), "
            "then one 'end' event (the stream as GET /v1/streams/{id} shows it); see "
            "docs/live.md",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def stream_events(request: Request, stream_id: str) -> Response:
    _, stream = _find(request, stream_id)

    async def events() -> AsyncIterator[bytes]:
        sent = 0
        while True:
            changed = stream.changed
            event = stream.last_event
            if event is not None and event["seq"] != sent:
                sent = event["seq"]
                yield _sse(event)
                if event["event"] == "end":
                    return
                continue
            try:
                await asyncio.wait_for(changed.wait(), SSE_KEEPALIVE_S)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield b": keep-alive\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
