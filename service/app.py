"""The Mirrorline HTTP API (FastAPI). ``app`` is importable by any ASGI server.

The app factory: middleware, exception handlers, the lifespan and the routers. The routes
live in ``service.routes`` (analyses, operations, evidence, report_page, streams) and stay
thin: parse and validate the request, hand CPU work to ``service.jobs`` (a process pool,
never the event loop), and answer JSON or ``application/problem+json``.
See docs/service.md for the contract.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from service import datadir, logs
from service.auth import QUERY_TOKEN_PATHS, header_token, owner_for, query_token
from service.jobs import JobManager
from service.metrics import Metrics
from service.problems import Problem, problem_body, problem_response, validation_errors
from service.routes import analyses, evidence, operations, report_page, streams
from service.routes.operations import DOCS_ASSETS
from service.s3audio import AudioStoreUnavailable, open_audio_store
from service.schemas import PROBLEM_SCHEMA
from service.settings import Settings, get_settings
from service.store import JobStore, Store
from service.streams import StreamRegistry

log = logging.getLogger("mirrorline.api")

OPEN_PATHS = {"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/openapi.json"}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# -- helpers --------------------------------------------------------------------------------


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
        for path, path_item in spec.get("paths", {}).items():
            if path in OPEN_PATHS:
                for operation in path_item.values():
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


def open_store(settings: Settings) -> JobStore:
    """The job store the settings choose: SQLite in DATA_DIR, or PostgreSQL (with the task
    queue) when DATABASE_URL is set."""
    if settings.database_url is None:
        return Store(settings.data_dir / "jobs.sqlite3")
    from service.pgstore import PgStore
    from service.queue import api_defer

    defer = api_defer(settings)
    return PgStore(
        settings.database_url,
        defer=defer,
        worker_stalled_s=settings.worker_stalled_s,
        audio=open_audio_store(settings.audio_store_url),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API. ``settings`` defaults to the environment (``MIRRORLINE_*``)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # before the database is opened and interrupted jobs recovered: one server per
        # DATA_DIR (a no-op when `mirrorline serve` already took it, before binding)
        datadir.acquire(settings.data_dir)
        store = open_store(settings)
        job_counts["source"] = store.counts
        jobs = JobManager(settings, store, metrics)
        queue_source["source"] = jobs.queue_stats
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
    queue_source: dict[str, Callable[[], dict[str, float]]] = {"source": dict}
    metrics = Metrics(lambda: job_counts["source"](), lambda: queue_source["source"]())

    app = FastAPI(
        title="Mirrorline",
        version="0.1.0",
        description="Tone and tempo mirroring in stereo call recordings (agent and customer "
        "on separate channels). Errors are application/problem+json with a stable `code`.",
        lifespan=lifespan,
        docs_url=None,  # served by routes.operations with local assets
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

    if settings.database_url is not None:
        from service.pgstore import UNAVAILABLE

        async def _unavailable(request: Request, exc: Exception) -> Response:
            log.warning("database unavailable: %s: %s", exc.__class__.__name__, exc)
            problem = Problem(
                "server.unavailable",
                "the job database is unavailable; nothing was changed, retry shortly",
                headers={"Retry-After": "5"},
            )
            return problem_for(request, problem)

        for kind in UNAVAILABLE:
            app.add_exception_handler(kind, _unavailable)

        async def _no_audio_store(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, AudioStoreUnavailable)
            detail = f"{exc.message}; nothing was changed, retry shortly"
            problem = Problem(exc.code, detail, headers={"Retry-After": "5"})
            return problem_for(request, problem)

        app.add_exception_handler(AudioStoreUnavailable, _no_audio_store)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = validation_errors(list(exc.errors()))
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

    # routes, in this order (the first match wins)
    app.include_router(analyses.router)  # POST /v1/analyze, /v1/analyses[/{id}[/windows.csv]]
    app.include_router(operations.router)  # /healthz, /readyz, /docs, /metrics
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")
    app.include_router(evidence.router)  # GET /v1/analyses/{id}/evidence.zip
    app.include_router(report_page.router)  # GET /v1/analyses/{id}/report.html
    app.include_router(streams.router)  # WS /v1/streams/twilio|raw, GET /v1/streams/{id}[/events]
    return app


app = create_app()
