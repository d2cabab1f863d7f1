"""The Mirrorline HTTP API (FastAPI). ``app`` is importable by any ASGI server.

Routes are thin: parse and validate the request, hand CPU work to ``service.jobs`` (a
process pool, never the event loop), and answer JSON or ``application/problem+json``.
See docs/service.md for the contract.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import SplitResult, urlsplit

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from dsp.errors import InputError
from models.params import AnalysisConfig
from models.report import Report
from service import datadir, logs
from service.auth import QUERY_TOKEN_PATHS, header_token, owner_for, query_token
from service.jobs import JobManager, result_url
from service.metrics import Metrics
from service.problems import Problem, from_input_error, problem_body, problem_response
from service.routes import evidence, report_page, streams
from service.routes.jobs import completed_job, find_job
from service.schemas import (
    PROBLEM_SCHEMA,
    Health,
    JobOut,
    JobPage,
    ListQuery,
    skipped_metrics,
    upload_body,
)
from service.settings import Settings, get_settings
from service.store import Job, Store, decode_cursor, encode_cursor
from service.streams import StreamRegistry
from service.uploads import Upload, receive_upload, safe_suffix
from service.webhooks import refused_destination

log = logging.getLogger("mirrorline.api")

OPEN_PATHS = {"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/openapi.json"}
#: Swagger UI's own files, served from the package (no CDN: /docs works offline).
DOCS_ASSETS = "/docs/assets"

CONFIG_FIELDS = set(AnalysisConfig.model_fields)
JOB_FIELDS = frozenset({"callback_url", "keep_audio"})
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# -- helpers --------------------------------------------------------------------------------


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return (
        datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def _validation_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic/FastAPI errors reduced to JSON-safe {loc, msg, type}."""
    return [
        {
            "loc": [str(x) for x in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in errors
    ]


def _parse_config(
    fields: dict[str, str], extra_fields: frozenset[str] = frozenset()
) -> AnalysisConfig:
    values: dict[str, Any] = {}
    for name, raw in fields.items():
        try:
            values[name] = json.loads(raw) if raw.strip() else raw
        except ValueError:
            values[name] = raw
        if not isinstance(values[name], int | float | str) or isinstance(values[name], bool):
            values[name] = raw
    try:
        return AnalysisConfig.model_validate(values)
    except ValidationError as exc:
        errors = _validation_errors(exc.errors(include_url=False))
        unknown = [e for e in errors if e["type"] == "extra_forbidden"]
        first = (unknown or errors)[0]
        where = ".".join(first["loc"]) or "parameters"
        if unknown:  # not an analysis parameter at all: the request is wrong
            raise Problem(
                "request.invalid",
                f"{where}: unknown form field (allowed form fields: file, "
                + ", ".join(sorted(CONFIG_FIELDS | extra_fields))
                + ")",
                extra={"errors": errors},
            ) from None
        # an analysis parameter out of range: the same code as the CLI and the library
        raise Problem(
            "config.invalid", f"{where}: {first['msg']}", extra={"errors": errors}
        ) from None


def _parse_bool(name: str, raw: str | None) -> bool:
    if raw is None:
        return False
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise Problem("request.invalid", f"{name} must be true or false, not {raw!r}")


def _callback_parts(url: str) -> SplitResult | None:
    """``url`` split, when it is an absolute http(s) URL with a host and a valid port."""
    if len(url) > 2048 or any(not ch.isprintable() or ch.isspace() for ch in url):
        return None
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError when out of range or not a number
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket: http://[::1/
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    return parts


async def _check_callback(url: str, settings: Settings) -> str:
    url = url.strip()
    if _callback_parts(url) is None:
        raise Problem(
            "request.invalid",
            f"callback_url must be an absolute http(s) URL with a host, not {url[:200]!r}",
        )
    if not settings.webhook_secret:
        raise Problem(
            "callback.not_configured",
            "this server has no MIRRORLINE_WEBHOOK_SECRET, so it cannot sign webhooks; "
            "omit callback_url and poll GET /v1/analyses/{id}",
        )
    if not settings.webhook_allow_private:
        refused = await refused_destination(url)
        if refused is not None:
            raise Problem(
                "callback.not_allowed",
                f"{refused}; callbacks go to public addresses only "
                "(MIRRORLINE_WEBHOOK_ALLOW_PRIVATE=true lifts this on a trusted network)",
            )
    return url


def _base_url(settings: Settings) -> str:
    """Where job URLs start: ``PUBLIC_BASE_URL``, else nothing (URLs relative to this
    server). Never the request's ``Host`` header, which the client chooses: trusting it would
    let anyone make Location headers and webhook ``result_url`` point elsewhere."""
    return (settings.public_base_url or "").rstrip("/")


def _declare_auth(app: FastAPI) -> None:
    """With API keys configured, the OpenAPI document says so: both ways of sending the key
    (``Authorization: Bearer`` or ``X-API-Key``) on every operation but the open ones."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = plain()
        spec.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "An API key."},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        spec["security"] = [{"bearer": []}, {"apiKey": []}]
        for path, operations in spec.get("paths", {}).items():
            if path in OPEN_PATHS:
                for operation in operations.values():
                    operation["security"] = []
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _allowed_methods(request: Request) -> list[str]:
    """The methods any route of the app takes on this request's path (for ``Allow``)."""
    from starlette.routing import Match

    allowed = []
    for method in ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


def _progress(job: Job) -> tuple[float | None, float | None]:
    """``(progress, processed_s)`` as the API shows them (see ``JobOut``)."""
    if job.status == "queued":
        return 0.0, None
    if job.status == "completed":
        return 1.0, None
    if job.status == "processing":
        if job.processed_s is None:  # no block analysed yet
            return 0.0, 0.0
        return job.progress, job.processed_s
    return None, None


def _job_out(job: Job, report: str | None = None) -> dict[str, Any]:
    url = result_url(job)
    progress, processed_s = _progress(job)
    out: dict[str, Any] = {
        "id": job.id,
        "status": job.status,
        "url": url,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "expires_at": _iso(job.expires_at),
        "filename": job.filename,
        "size_bytes": job.size_bytes,
        "config": job.config,
        "callback_url": job.callback_url,
        "keep_audio": job.keep_audio,
        "audio_stored": job.audio_path is not None,
        "attempts": job.attempts,
        "error": (
            {"code": job.error_code, "message": job.error_message or ""} if job.error_code else None
        ),
        "progress": progress,
        "processed_s": processed_s,
        "windows_csv_url": f"{url}/windows.csv" if job.status == "completed" else None,
        "skipped": None,
    }
    if report is not None:
        parsed = json.loads(report)
        out["skipped"] = parsed["skipped"] if "skipped" in parsed else skipped_metrics(parsed)
        out["report"] = parsed
    return out


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


async def _probe(upload: Upload, *, max_duration_s: float, sync_limit_s: float | None) -> None:
    """Refuse unreadable audio and over-long calls from the header, before queueing work."""
    from dsp.io import probe

    try:
        info = await asyncio.to_thread(probe, upload.path)
    except InputError as exc:
        raise from_input_error(exc, upload.path) from None
    except Exception:  # a decoder bug: refuse the file here, on both paths, never queue it
        log.exception("probe failed")
        raise Problem(
            "audio.undecodable",
            "could not read this as audio; send WAV, FLAC, OGG, Opus, WebM, MP3 or M4A",
        ) from None
    declared = info.declared_duration_s
    if declared is None:
        return
    if declared > max_duration_s + 1.0:
        raise Problem(
            "audio.too_long",
            f"the recording lasts {declared:.0f} s; the limit is {max_duration_s:.0f} s",
        )
    if sync_limit_s is not None and declared > sync_limit_s + 1.0:
        raise _sync_too_long(declared, sync_limit_s)


def _sync_too_long(declared: float | None, limit_s: float) -> Problem:
    lasts = f"lasts {declared:.0f} s" if declared is not None else "is too long"
    return Problem(
        "sync.too_long",
        f"the recording {lasts}; POST /v1/analyze takes calls up to {limit_s:.0f} s "
        "(MIRRORLINE_SYNC_MAX_DURATION_S): submit it as a job with POST /v1/analyses",
        extra={"use": "/v1/analyses"},
    )


# -- middleware -----------------------------------------------------------------------------


class RequestContext:
    """Request id, API-key auth, access log, HTTP metrics and last-resort 500s (pure ASGI)."""

    def __init__(self, app: ASGIApp, settings: Settings, metrics: Metrics) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.keys = [k.encode() for k in settings.api_keys]

    def _owner(self, headers: dict[str, str], scope: Scope) -> str | Problem:
        token = header_token(headers)
        if (
            token is None
            and scope["method"] == "GET"
            and scope["path"].startswith(QUERY_TOKEN_PATHS)
        ):
            token = query_token(scope.get("query_string", b""))
        return owner_for(self.keys, token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = logs.new_request_id(headers.get("x-request-id"))
        token = logs.request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        path = scope["path"]
        try:
            scope.setdefault("state", {})["request_id"] = request_id
            is_open = path in OPEN_PATHS or path.startswith(DOCS_ASSETS + "/")
            owner = "" if is_open else self._owner(headers, scope)
            if isinstance(owner, Problem):
                await self._problem(owner, path, request_id)(scope, receive, send_with_id)
            else:
                scope["state"]["owner"] = owner
                await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error", extra={"path": path})
            if not response_started:
                problem = Problem("internal", "an internal error occurred; it has been logged")
                await self._problem(problem, path, request_id)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(elapsed)
            log.info(
                "%s %s %s",
                scope["method"],
                path,
                status,
                extra={
                    "method": scope["method"],
                    "path": path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
            logs.request_id_var.reset(token)

    @staticmethod
    def _problem(problem: Problem, path: str, request_id: str) -> Response:
        return problem_response(
            problem.code,
            problem.detail,
            instance=path,
            headers=problem.headers,
            extra={"request_id": request_id, **problem.extra},
        )


# -- application ----------------------------------------------------------------------------


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API. ``settings`` defaults to the environment (``MIRRORLINE_*``)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # before the database is opened and interrupted jobs recovered: one server per
        # DATA_DIR (a no-op when `mirrorline serve` already took it, before binding)
        datadir.acquire(settings.data_dir)
        store = Store(settings.data_dir / "jobs.sqlite3")
        job_counts["source"] = store.counts
        jobs = JobManager(settings, store, metrics)
        await jobs.start()
        app.state.store = store
        app.state.jobs = jobs
        app.state.streams = StreamRegistry(settings, jobs, store, metrics)
        log.info(
            "mirrorline service started",
            extra={
                "data_dir": str(settings.data_dir),
                "workers": settings.workers,
                "auth": bool(settings.api_keys),
            },
        )
        try:
            yield
        finally:
            await app.state.streams.stop_all()
            await jobs.stop()
            store.close()
            log.info("mirrorline service stopped")

    job_counts: dict[str, Callable[[], dict[str, int]]] = {"source": dict}
    metrics = Metrics(lambda: job_counts["source"]())

    app = FastAPI(
        title="Mirrorline",
        version="0.1.0",
        description="Tone and tempo mirroring in stereo call recordings (agent and customer "
        "on separate channels). Errors are application/problem+json with a stable `code`.",
        lifespan=lifespan,
        docs_url=None,  # served below with local assets
        redoc_url=None,  # one API browser (Swagger UI at /docs); ReDoc would need a CDN
        responses={
            "4XX": {"description": "Client error", "content": PROBLEM_SCHEMA},
            "5XX": {"description": "Server error", "content": PROBLEM_SCHEMA},
        },
    )
    app.state.settings = settings
    app.state.metrics = metrics
    if settings.api_keys:
        _declare_auth(app)

    app.add_middleware(RequestContext, settings=settings, metrics=metrics)

    def problem_for(request: Request, problem: Problem) -> Response:
        return problem_response(
            problem.code,
            problem.detail,
            instance=request.url.path,
            headers=problem.headers,
            extra={"request_id": request.scope.get("state", {}).get("request_id"), **problem.extra},
        )

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        if exc.code == "server.busy":
            metrics.busy.inc()
        return problem_for(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = _validation_errors(list(exc.errors()))
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        detail = f"{'.'.join(first['loc'])}: {first['msg']}"
        return problem_for(request, Problem("request.invalid", detail, extra={"errors": errors}))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        if code is None:
            code = "request.invalid" if 400 <= exc.status_code < 500 else "internal"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only its first route's
            headers["Allow"] = ", ".join(_allowed_methods(request))
        body = problem_body(code, str(exc.detail), instance=request.url.path)
        body["status"] = exc.status_code
        body["request_id"] = request.scope.get("state", {}).get("request_id")
        return Response(
            json.dumps(body),
            status_code=exc.status_code,
            media_type="application/problem+json",
            headers=headers,
        )

    def state(request: Request) -> tuple[JobManager, Store, str]:
        return request.app.state.jobs, request.app.state.store, request.scope["state"]["owner"]

    async def read_upload(request: Request) -> Upload:
        jobs: JobManager = request.app.state.jobs
        return await receive_upload(
            request.headers,
            request.stream(),
            upload_dir=jobs.upload_dir,
            max_bytes=settings.max_upload_bytes,
            idle_timeout_s=settings.upload_idle_timeout_s,
            min_bytes_per_s=settings.upload_min_bytes_per_s,
        )

    # -- analyses -------------------------------------------------------------------------

    @app.post(
        "/v1/analyze",
        tags=["analyses"],
        summary="Analyse a short call now and return its report",
        response_model=Report,
        openapi_extra={"requestBody": upload_body(with_job_fields=False)},
        responses={
            200: report_page.HTML_RESPONSE,
            413: {"description": "Too large or too long (use /v1/analyses)"},
        },
    )
    async def analyze(
        request: Request,
        format: Annotated[
            Literal["json", "html"] | None,
            Query(
                description="json: the report (default); html: the call report page (also "
                "chosen by Accept: text/html)"
            ),
        ] = None,
    ) -> Response:
        jobs, _, _ = state(request)
        if len(jobs.slots.waiters) >= jobs.slots.max_waiters:
            raise Problem(
                "server.busy",
                "too many analyses are waiting; retry later",
                headers={"Retry-After": str(settings.retry_after_s)},
            )
        upload = await read_upload(request)
        try:
            config = _parse_config(upload.fields)
            limit_s = min(settings.max_duration_s, settings.sync_max_duration_s)
            await _probe(
                upload,
                max_duration_s=settings.max_duration_s,
                sync_limit_s=settings.sync_max_duration_s,
            )
            outcome = await jobs.analyze_now(
                upload.path, config.model_dump_json(), upload.filename, limit_s
            )
        finally:
            upload.discard()
        kind, first, second = outcome
        if kind == "ok":
            if report_page.wants_html(request, format):
                return await report_page.html_response(first, headers=report_page.VARY)
            return Response(first, media_type="application/json", headers=report_page.VARY)
        if kind == "error":
            if first == "audio.too_long" and limit_s < settings.max_duration_s:
                raise _sync_too_long(None, limit_s)
            raise Problem(first, second)
        log.error("analysis failed: internal error", extra={"error": first, "trace": second})
        raise Problem("internal", "the analysis failed unexpectedly; it has been logged")

    @app.post(
        "/v1/analyses",
        tags=["analyses"],
        summary="Submit a call for analysis (a job); 202 with the job and its Location",
        status_code=202,
        response_model=JobOut,
        openapi_extra={
            "requestBody": upload_body(with_job_fields=True),
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "maxLength": 255},
                    "description": "A repeat with the same key returns the original job.",
                }
            ],
        },
    )
    async def submit(request: Request) -> Response:
        jobs, store, owner = state(request)
        key = request.headers.get("idempotency-key")
        if key is not None and not 1 <= len(key) <= 255:
            raise Problem("request.invalid", "Idempotency-Key must be 1 to 255 characters")
        if key is None:
            jobs.check_queue()  # refuse early, before reading a large upload
        upload = await read_upload(request)
        keep = False
        try:
            fields = dict(upload.fields)
            callback = fields.pop("callback_url", None)
            keep = _parse_bool("keep_audio", fields.pop("keep_audio", None))
            config = _parse_config(fields, JOB_FIELDS)
            if callback:
                callback = await _check_callback(callback, settings)
            fingerprint = hashlib.sha256(
                json.dumps([upload.sha256, config.model_dump(mode="json"), callback, keep]).encode()
            ).hexdigest()
            job_id = f"an_{uuid.uuid4().hex}"
            values = {
                "id": job_id,
                "owner": owner,
                "status": "queued",
                "created_at": time.time(),
                "config": config.model_dump(mode="json"),
                "filename": upload.filename,
                "audio_path": None,
                "keep_audio": keep,
                "size_bytes": upload.size_bytes,
                "idempotency_key": key,
                "fingerprint": fingerprint,
                "callback_url": callback or None,
                "base_url": _base_url(settings),
            }
            replay = _replayed(store, owner, key, fingerprint)
            if replay is not None:
                upload.discard()
                return _created(replay, replayed=True)
            await _probe(upload, max_duration_s=settings.max_duration_s, sync_limit_s=None)
            jobs.check_queue()
            audio = jobs.audio_dir / f"{job_id}{safe_suffix(upload.filename)}"
            upload.path.rename(audio)
            upload.path = audio
            values["audio_path"] = str(audio)
            job, created = store.create_job(values)
        except BaseException:
            upload.discard()
            raise
        if not created:  # lost a race with the same key
            upload.discard()
            if job.fingerprint != fingerprint:
                raise _key_reused()
            return _created(job, replayed=True)
        jobs.wake()
        log.info("job queued", extra={"job_id": job.id, "size_bytes": upload.size_bytes})
        return _created(job, replayed=False)

    def _replayed(store: Store, owner: str, key: str | None, fingerprint: str) -> Job | None:
        if key is None:
            return None
        found = store.by_key(owner, key)
        if found is not None and found.fingerprint != fingerprint:
            raise _key_reused()
        return found

    def _key_reused() -> Problem:
        return Problem(
            "idempotency.key_reused",
            "this Idempotency-Key was already used for a different upload or parameters",
        )

    def _created(job: Job, *, replayed: bool) -> Response:
        headers = {"Location": result_url(job)}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return _json(_job_out(job), status=202, headers=headers)

    @app.get(
        "/v1/analyses",
        tags=["analyses"],
        summary="List your analyses, newest first (cursor pagination)",
        response_model=JobPage,
    )
    async def list_jobs(request: Request, query: Annotated[ListQuery, Query()]) -> Response:
        _, store, owner = state(request)
        after = None
        if query.cursor is not None:
            after = decode_cursor(query.cursor)
            if after is None:
                raise Problem("request.invalid", "cursor: not a cursor from a previous page")
        found = store.list_jobs(
            owner=owner, limit=query.limit + 1, after=after, status=query.status
        )
        page = found[: query.limit]
        more = len(found) > query.limit
        next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more and page else None
        return _json({"items": [_job_out(j) for j in page], "next_cursor": next_cursor})

    @app.get(
        "/v1/analyses/{job_id}",
        tags=["analyses"],
        summary="Status of an analysis; the report once completed",
        response_model=JobOut,
    )
    async def read_job(request: Request, job_id: str) -> Response:
        job = find_job(request, job_id)
        report = None
        if job.status == "completed":
            report, _ = request.app.state.store.result(job.id)
        return _json(_job_out(job, report))

    @app.get(
        "/v1/analyses/{job_id}/windows.csv",
        tags=["analyses"],
        summary="The windowed time series of a completed analysis as CSV",
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}}},
    )
    async def read_csv(request: Request, job_id: str) -> Response:
        job = completed_job(request, job_id)
        _, csv_text = request.app.state.store.result(job.id)
        return Response(
            csv_text or "",
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{job.id}-windows.csv"'},
        )

    @app.delete(
        "/v1/analyses/{job_id}",
        tags=["analyses"],
        summary="Delete an analysis, its result and any stored audio",
        status_code=204,
        response_class=Response,
    )
    async def delete_job(request: Request, job_id: str) -> Response:
        jobs, _, owner = state(request)
        if not jobs.delete(job_id, owner):
            raise Problem("job.not_found", f"no analysis {job_id!r}")
        log.info("job deleted", extra={"job_id": job_id})
        return Response(status_code=204)

    # -- operations -----------------------------------------------------------------------

    @app.get("/healthz", tags=["operations"], summary="Liveness", response_model=Health)
    async def healthz() -> Response:
        return _json({"status": "ok"})

    @app.get("/readyz", tags=["operations"], summary="Readiness", response_model=Health)
    async def readyz(request: Request) -> Response:
        jobs: JobManager | None = getattr(request.app.state, "jobs", None)
        if jobs is None or jobs.stopping or not jobs.ready:
            raise Problem("server.not_ready", "workers are starting", headers={"Retry-After": "2"})
        try:
            request.app.state.store.ping()
        except Exception:
            raise Problem("server.not_ready", "the job database is unavailable") from None
        return _json({"status": "ready"})

    @app.get(
        "/docs",
        include_in_schema=False,
        response_class=HTMLResponse,
    )
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Mirrorline API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False, response_class=HTMLResponse)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics (text exposition format)",
        response_class=PlainTextResponse,
        responses={
            200: {
                "description": "Prometheus text format 0.0.4",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(evidence.router)  # GET /v1/analyses/{id}/evidence.zip
    app.include_router(report_page.router)  # GET /v1/analyses/{id}/report.html
    app.include_router(streams.router)  # WS /v1/streams/twilio|raw, GET /v1/streams/{id}[/events]
    return app


app = create_app()
