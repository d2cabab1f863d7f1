"""``GET /v1/analyses/{job_id}/evidence.zip``: the rows each mirroring test of a completed
analysis used, as CSV files in a ZIP (``dsp.mirroring.evidence``; the worker builds it with
the report). Thin like the other routes: the archive is stored with the job's result.

``service.app.create_app`` includes :data:`router`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.problems import Problem
from service.routes.jobs import completed_job
from service.store import JobStore

PATH = "/v1/analyses/{job_id}/evidence.zip"

router = APIRouter()


@router.get(
    PATH,
    tags=["analyses"],
    summary="The rows each mirroring test used (CSV files in a ZIP), to recompute its r and p",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
async def read_evidence(request: Request, job_id: str) -> Response:
    job = completed_job(request, job_id)
    store: JobStore = request.app.state.store
    archive = store.evidence(job.id)
    if archive is None:
        raise Problem(
            "job.not_found",
            f"analysis {job_id} has no stored evidence (analysed by an older version); "
            "submit the call again",
        )
    return Response(
        archive,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{job.id}-evidence.zip"'},
    )
