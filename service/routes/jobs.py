"""The job lookups the job routes share: one wording and one status code per case."""

from __future__ import annotations

from fastapi import Request

from service.problems import Problem
from service.store import Job, JobStore


def find_job(request: Request, job_id: str) -> Job:
    """The caller's job ``job_id`` (404 ``job.not_found`` when it does not exist for them)."""
    store: JobStore = request.app.state.store
    job = store.get(job_id, owner=request.scope["state"]["owner"])
    if job is None:
        raise Problem(
            "job.not_found",
            f"no analysis {job_id!r} (never created, deleted, or its result expired)",
        )
    return job


def completed_job(request: Request, job_id: str) -> Job:
    """:func:`find_job`, refused unless it completed (``job.failed``, or ``job.not_ready``
    with ``Retry-After``)."""
    job = find_job(request, job_id)
    if job.status == "failed":
        raise Problem("job.failed", f"analysis {job_id} failed: {job.error_code}")
    if job.status != "completed":
        raise Problem(
            "job.not_ready",
            f"analysis {job_id} is {job.status}; retry when it is completed",
            headers={"Retry-After": "5"},
        )
    return job
