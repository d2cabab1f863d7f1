"""Live streams: ``WS /v1/streams/twilio``, ``WS /v1/streams/audiohook``,
``WS /v1/streams/raw`` (audio in), ``WS /v1/streams/{id}/events`` (subscription),
``GET /v1/streams/{id}/live`` (the live page),
``GET /v1/streams/{id}`` (state, then the analysis) and ``GET /v1/streams/{id}/events``
(Server-Sent Events). Protocols, close codes and cues: docs/live.md.

Thin: messages are parsed by ``service.stream_protocols``, audio placed and analysed by
``service.streams``. A bad message never raises out of a route: the socket is closed with
a 44xx code whose reason starts with the error code, and the audio received so far is
still analysed. ``service.app.create_app`` includes :data:`router`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, WebSocket
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.websockets import WebSocketState

from service.auth import header_token, owner_for
from service.live_page import render_live_page
from service.problems import Problem
from service.schemas import StreamOut
from service.stream_protocols import (
    AUDIOHOOK_RATE_HZ,
    TWILIO_RATE_HZ,
    BadMessage,
    TwilioMedia,
    TwilioOther,
    TwilioStart,
    choose_audiohook_media,
    iso_seconds,
    parse_audiohook,
    parse_json,
    parse_raw_start,
    parse_twilio,
    raw_samples,
)
from service.streams import EndReason, LiveStream, StreamRefused, StreamRegistry
from service.webhooks import check_callback

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
    "stream.not_found": 4404,
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
    try:  # asyncio.timeout, not wait_for: no task per message (100 a second per call)
        async with asyncio.timeout(timeout_s):
            message = await ws.receive()
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


Tell = Callable[[WebSocket, _Closed, LiveStream | None], Awaitable[None]]


async def _tell_nothing(ws: WebSocket, closed: _Closed, stream: LiveStream | None) -> None:
    return None


async def _finish(
    ws: WebSocket,
    registry: StreamRegistry,
    stream: LiveStream | None,
    closed: _Closed,
    *,
    tell: Tell = _tell_nothing,
) -> None:
    """End the stream (its audio becomes an analysis), say so in the protocol's own words
    (``tell``) and close the socket."""
    if closed.error is not None:
        registry.metrics.stream_refusals.labels(closed.error["code"]).inc()
        log.info("stream closed: %s", closed.error["code"], extra={"detail": closed.error})
    if stream is not None:
        await registry.end(stream, closed.reason, closed.error)
    if ws.client_state != WebSocketState.CONNECTED or closed.reason == "disconnect":
        return
    try:
        await tell(ws, closed, stream)
        reason = "" if closed.error is None else f"{closed.error['code']}: "
        reason += "" if closed.error is None else closed.error["message"]
        await ws.close(code=closed.code, reason=reason.encode()[:120].decode(errors="ignore"))
    except Exception:  # the client went away meanwhile
        pass


class _Ingest:
    """One ingest connection: what the three protocols share. ``serve`` accepts it,
    checks a key sent in a header or the query before anything else, runs the protocol's
    loop and, however that ends, ends the stream (its audio becomes an analysis) and says
    so in the protocol's own words (``tell``)."""

    def __init__(self, ws: WebSocket, tell: Tell = _tell_nothing) -> None:
        self.ws = ws
        self.registry: StreamRegistry = ws.app.state.streams
        self.settings = self.registry.settings
        self.token = _given_token(ws)
        self.stream: LiveStream | None = None
        self.tell = tell

    async def serve(self, protocol: Callable[[_Ingest], Awaitable[None]]) -> None:
        await self.ws.accept()
        try:
            if self.token is not None:
                _owner(self.ws, self.token)  # a wrong key is refused before anything else
            await protocol(self)
        except _Closed as closed:
            await self.finish(closed)
        except BadMessage as exc:
            await self.finish(_error(exc.code, exc.detail))
        except StreamRefused as exc:
            await self.finish(_refused(exc))
        except Problem as exc:  # a refused callback_url
            await self.finish(_error(exc.code, exc.detail))
        except Exception:
            log.exception("stream failed", extra={"path": self.ws.url.path})
            await self.finish(_internal())

    async def finish(self, closed: _Closed) -> None:
        await _finish(self.ws, self.registry, self.stream, closed, tell=self.tell)

    async def receive(self) -> dict[str, Any]:
        return await _receive(self.ws, self.settings.stream_idle_timeout_s)

    async def open(
        self,
        stream_id: str,
        protocol: Literal["twilio", "audiohook", "raw"],
        *,
        token: str | None,
        callback_url: Any,
        sample_rate_hz: int,
        agent_channel: int,
        channel_names: tuple[str, str],
    ) -> LiveStream:
        """Start the stream (the key of the start message when none came before it)."""
        owner = _owner(self.ws, self.token or token)
        callback = None
        if callback_url is not None:
            if not isinstance(callback_url, str) or not callback_url:
                raise BadMessage("stream.bad_message", "callback_url must be a URL")
            callback = await check_callback(callback_url, self.settings)
        self.stream = self.registry.open(
            stream_id,
            owner,
            protocol,
            sample_rate_hz=sample_rate_hz,
            agent_channel=agent_channel,
            channel_names=channel_names,
            callback_url=callback,
        )
        return self.stream


@router.websocket("/v1/streams/twilio")
async def twilio_stream(ws: WebSocket) -> None:
    """Twilio Media Streams (``<Stream track="both_tracks">``) and Telnyx media streaming:
    channel 0 is the inbound track, channel 1 the outbound track."""
    await _Ingest(ws).serve(_twilio)


async def _twilio(ingest: _Ingest) -> None:
    registry, settings = ingest.registry, ingest.settings
    stream: LiveStream | None = None
    while True:
        message = await ingest.receive()
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
            track = parsed.custom.get("agent_track", settings.stream_agent_track)
            if track not in ("inbound", "outbound"):
                raise BadMessage(
                    "stream.bad_message", "customParameters.agent_track: inbound or outbound"
                )
            stream = await ingest.open(
                parsed.call_id,
                "twilio",
                token=parsed.custom.get("token"),
                callback_url=parsed.custom.get("callback_url"),
                sample_rate_hz=TWILIO_RATE_HZ,
                agent_channel=0 if track == "inbound" else 1,
                channel_names=("inbound", "outbound"),
            )
        elif isinstance(parsed, TwilioOther) and parsed.event == "stop":
            raise _Closed("stop", CLOSE_NORMAL)
        # connected, mark, dtmf and events this server does not use: nothing to do


async def _tell_raw(ws: WebSocket, closed: _Closed, stream: LiveStream | None) -> None:
    if closed.error is not None:
        await ws.send_text(json.dumps({"event": "error", **closed.error}))
    elif stream is not None:
        ended = {"event": "ended", "id": stream.id, "analysis_id": stream.analysis_id}
        await ws.send_text(json.dumps(ended))


class _Interleaved:
    """Places interleaved stereo bytes, in arrival order, on the stream's timeline; a
    message may end inside a sample frame (the next one completes it)."""

    def __init__(
        self, registry: StreamRegistry, stream: LiveStream, encoding: Literal["pcm16", "mulaw"]
    ) -> None:
        self.registry = registry
        self.stream = stream
        self.encoding = encoding
        self.bytes_per_frame = 4 if encoding == "pcm16" else 2
        self.position = 0
        self.rest = b""

    def add(self, data: bytes) -> None:
        data = self.rest + data
        whole = len(data) - len(data) % self.bytes_per_frame
        self.rest = data[whole:]
        samples = raw_samples(data[:whole], self.encoding)
        if samples.shape[1]:
            self.registry.push(self.stream, 0, self.position, samples[0])
            self.registry.push(self.stream, 1, self.position, samples[1])
            self.position += samples.shape[1]
        if not self.registry.release(self.stream):
            raise _too_long(self.registry.settings.max_duration_s)

    def skip(self, seconds: float) -> None:
        """Audio the sender says it did not send (a gap: silence)."""
        self.position += int(round(seconds * self.stream.sample_rate_hz))


@router.websocket("/v1/streams/raw")
async def raw_stream(ws: WebSocket) -> None:
    """A JSON start message, then binary interleaved stereo frames, then ``stop``."""
    await _Ingest(ws, tell=_tell_raw).serve(_raw)


async def _raw(ingest: _Ingest) -> None:
    message = await ingest.receive()
    if message.get("text") is None:
        raise BadMessage("stream.bad_message", "the first message must be the JSON start")
    start = parse_raw_start(parse_json(message["text"]))
    stream = await ingest.open(
        start.id,
        "raw",
        token=start.token,
        callback_url=start.callback_url,
        sample_rate_hz=start.sample_rate_hz,
        agent_channel=start.agent_channel,
        channel_names=("channel 0", "channel 1"),
    )
    await ingest.ws.send_text(json.dumps({"event": "started", "id": start.id}))
    audio = _Interleaved(ingest.registry, stream, start.encoding)
    while True:
        message = await ingest.receive()
        if message.get("bytes") is not None:
            audio.add(message["bytes"])
            continue
        event = parse_json(message.get("text") or "").get("event")
        if event == "stop":
            raise _Closed("stop", CLOSE_NORMAL)
        raise BadMessage("stream.bad_message", "after start: binary audio or a stop event")


class _AudioHook:
    """The server side of one AudioHook v2 session: its sequence numbers and replies."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.session = "00000000-0000-0000-0000-000000000000"
        self.seq = 0  # server messages sent
        self.clientseq = 0  # last client message seen

    async def send(self, kind: str, parameters: dict[str, Any]) -> None:
        self.seq += 1
        message = {
            "version": "2",
            "id": self.session,
            "type": kind,
            "seq": self.seq,
            "clientseq": self.clientseq,
            "parameters": parameters,
        }
        await self.ws.send_text(json.dumps(message))

    async def tell(self, ws: WebSocket, closed: _Closed, stream: LiveStream | None) -> None:
        """``closed`` after the client's ``close``; ``disconnect`` (reason unauthorized or
        error, with what went wrong in ``info``) otherwise."""
        if closed.error is None:
            if closed.reason == "stop":
                await self.send("closed", {})
            return
        code = closed.error["code"]
        reason = "unauthorized" if code.startswith("auth.") else "error"
        info = f"{code}: {closed.error['message']}"
        await self.send("disconnect", {"reason": reason, "info": info})


@router.websocket("/v1/streams/audiohook")
async def audiohook_stream(ws: WebSocket) -> None:
    """Genesys AudioHook v2: ``open`` -> ``opened`` (stereo PCMU, external and internal),
    binary audio, ``ping`` -> ``pong``, ``update`` -> ``updated``, ``discarded`` / ``resumed``
    gaps, ``close`` -> ``closed``. The agent is the ``internal`` channel; the stream id is
    the ``conversationId``; the key travels in ``X-API-KEY`` as Genesys sends it."""
    session = _AudioHook(ws)
    await _Ingest(ws, tell=session.tell).serve(functools.partial(_audiohook, session=session))


async def _audiohook(ingest: _Ingest, *, session: _AudioHook) -> None:
    audio: _Interleaved | None = None
    while True:
        message = await ingest.receive()
        if message.get("bytes") is not None:
            if audio is None:
                raise BadMessage("stream.bad_message", "audio before open")
            audio.add(message["bytes"])
            continue
        parsed = parse_audiohook(parse_json(message.get("text") or ""))
        session.session = parsed.id
        session.clientseq = parsed.seq
        if parsed.type == "open":
            if audio is not None:
                raise BadMessage("stream.bad_message", "a second open message")
            opened = choose_audiohook_media(parsed.parameters)
            custom = parsed.parameters.get("customConfig")
            stream = await ingest.open(
                opened.conversation_id,
                "audiohook",
                token=None,
                callback_url=custom.get("callback_url") if isinstance(custom, dict) else None,
                sample_rate_hz=AUDIOHOOK_RATE_HZ,
                agent_channel=opened.channels.index("internal"),
                channel_names=(opened.channels[0], opened.channels[1]),
            )
            audio = _Interleaved(ingest.registry, stream, opened.encoding)
            await session.send("opened", {"media": [opened.media], "startPaused": False})
        elif parsed.type == "ping":
            await session.send("pong", {})
        elif parsed.type == "update":
            await session.send("updated", {})
        elif parsed.type in ("discarded", "resumed") and audio is not None:
            audio.skip(iso_seconds(parsed.parameters.get("discarded"), "discarded"))
        elif parsed.type == "close":
            raise _Closed("stop", CLOSE_NORMAL)
        # paused, error and messages this server does not use: nothing to answer


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


TokenQuery = Annotated[
    str | None,
    Query(
        description="The API key, for clients that cannot send headers (a browser's "
        "EventSource, the live page's address); a header wins when both are sent.",
    ),
]


@router.get(
    "/v1/streams/{stream_id}/live",
    tags=["streams"],
    summary="The live page: who speaks, talk share, pitch, loudness, rate and cues as they "
    "come (one HTML file following the events)",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}},
)
async def live_page(request: Request, stream_id: str, token: TokenQuery = None) -> HTMLResponse:
    _find(request, stream_id)
    page, csp = render_live_page(stream_id, token=token)
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": csp,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


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
async def stream_events(request: Request, stream_id: str, token: TokenQuery = None) -> Response:
    _, stream = _find(request, stream_id)

    async def events() -> AsyncIterator[bytes]:
        async for event in _follow(stream):
            if event is None:
                if await request.is_disconnected():
                    return
                yield b": keep-alive\n\n"
            else:
                yield _sse(event)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _follow(stream: LiveStream) -> AsyncIterator[dict[str, Any] | None]:
    """The stream's latest event, then each newer one (a slow reader skips to the newest),
    until the end event; None every SSE_KEEPALIVE_S without an event."""
    sent = 0
    while True:
        changed = stream.changed
        event = stream.last_event
        if event is not None and event["seq"] != sent:
            sent = event["seq"]
            yield event
            if event["event"] == "end":
                return
            continue
        try:
            await asyncio.wait_for(changed.wait(), SSE_KEEPALIVE_S)
        except TimeoutError:
            yield None


@router.websocket("/v1/streams/{stream_id}/events")
async def stream_events_ws(ws: WebSocket, stream_id: str) -> None:
    """The same events as the SSE route, one JSON text message each; closed (1000) after
    the end event. Auth as the ingest routes (header or ?token=)."""
    registry: StreamRegistry = ws.app.state.streams
    await ws.accept()
    try:
        owner = _owner(ws, _given_token(ws))
        stream = registry.get(stream_id, owner)
        if stream is None:
            raise _Closed(
                "error",
                CLOSE_CODES["stream.not_found"],
                {"code": "stream.not_found", "message": f"no stream {stream_id!r}"},
            )
        listener = asyncio.create_task(ws.receive())  # notices the subscriber leaving
        try:
            async for event in _follow(stream):
                if listener.done():
                    return
                if event is not None:
                    await ws.send_text(json.dumps(event, separators=(",", ":")))
        finally:
            listener.cancel()
        await ws.close(code=CLOSE_NORMAL)
    except _Closed as closed:
        await _finish(ws, registry, None, closed, tell=_tell_raw)
    except Exception:  # the subscriber went away mid-send
        log.debug("event subscriber gone", exc_info=True)
