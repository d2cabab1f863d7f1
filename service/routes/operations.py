"""The operations routes: ``GET /healthz`` (liveness), ``GET /readyz`` (readiness),
``GET /metrics`` (Prometheus), and Swagger UI at ``/docs`` with its own files served from the
package under :data:`DOCS_ASSETS` (no CDN: /docs works offline; the app factory mounts them).

``service.app.create_app`` includes :data:`router`.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from service.jobs import JobManager
from service.problems import Problem
from service.routes.deps import MetricsDep
from service.schemas import Health

#: Swagger UI's own files, served from the package (no CDN: /docs works offline).
DOCS_ASSETS = "/docs/assets"

router = APIRouter()


@router.get(
    "/healthz",
    tags=["operations"],
    summary="Liveness",
    response_model=Health,
    response_model_exclude_none=True,
)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    tags=["operations"],
    summary="Readiness: the workers, the database and the queue",
    response_model=Health,
    response_model_exclude_none=True,
)
async def readyz(request: Request) -> Health:
    jobs: JobManager | None = getattr(request.app.state, "jobs", None)
    if jobs is None or jobs.stopping or not jobs.ready:
        raise Problem("server.not_ready", "workers are starting", headers={"Retry-After": "2"})
    checks = await asyncio.to_thread(request.app.state.store.health)
    bad = {name: state for name, state in checks.items() if state != "ok"}
    if bad:
        detail = "; ".join(f"{name}: {state}" for name, state in bad.items())
        raise Problem("server.not_ready", detail, headers={"Retry-After": "2"})
    return Health(status="ready", checks=checks)


@router.get(
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


@router.get("/docs/oauth2-redirect", include_in_schema=False, response_class=HTMLResponse)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(
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
async def prometheus(metrics: MetricsDep) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
