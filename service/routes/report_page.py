"""``GET /v1/analyses/{job_id}/report.html``: the call report page of a completed analysis
(``service.report_page``), and the content negotiation ``POST /v1/analyze`` uses to return
the same page (``Accept: text/html`` or ``?format=html``; JSON stays the default).

Thin like the other routes: the page is drawn from the stored report, in a worker thread
(a few hundred ms of plotting must not hold the event loop).

``service.app.create_app`` includes :data:`router`.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from service.report_page import page_from_json
from service.routes.jobs import completed_job
from service.store import JobStore

PATH = "/v1/analyses/{job_id}/report.html"
HTML = "text/html"
#: The alternative response of an endpoint that can return the page (OpenAPI).
HTML_RESPONSE = {"content": {HTML: {"schema": {"type": "string"}}}}
#: A response whose media type followed the Accept header says so (caches keep both).
VARY = {"Vary": "Accept"}

router = APIRouter()


@router.get(
    PATH,
    tags=["analyses"],
    summary="The call report page: one self-contained HTML file (no network requests)",
    response_class=HTMLResponse,
    responses={200: HTML_RESPONSE},
)
async def read_report_page(request: Request, job_id: str) -> HTMLResponse:
    job = completed_job(request, job_id)
    store: JobStore = request.app.state.store
    report_json, _ = store.result(job.id)
    return await html_response(report_json or "")


async def html_response(report_json: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    """The page of a report (its JSON text), drawn off the event loop."""
    return HTMLResponse(await asyncio.to_thread(page_from_json, report_json), headers=headers)


def _quality(accept: str, media_type: str) -> float:
    """The q of ``media_type`` in an Accept header (exact type, then ``type/*``, ``*/*``)."""
    kind = media_type.split("/")[0]
    best: tuple[int, float] = (-1, 0.0)
    for item in accept.split(","):
        name, *params = (part.strip() for part in item.split(";"))
        rank = {media_type: 2, f"{kind}/*": 1, "*/*": 0}.get(name.lower())
        if rank is None or rank < best[0]:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best = (rank, q)
    return best[1]


def wants_html(request: Request, format: str | None) -> bool:
    """HTML when ``format=html``, or when the Accept header prefers ``text/html`` to
    ``application/json`` (a browser); JSON otherwise (``format=json``, no Accept, ``*/*``)."""
    if format is not None:
        return format == "html"
    accept = request.headers.get("accept", "")
    return _quality(accept, HTML) > _quality(accept, "application/json")
