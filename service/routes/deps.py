"""What the routes depend on, as typed ``Annotated`` dependencies: the app factory puts the
settings and metrics on ``app.state``, the lifespan adds the store and the job manager, and
the request context middleware the caller's ``owner`` (``""`` without API keys)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.jobs import JobManager
from service.metrics import Metrics
from service.settings import Settings
from service.store import JobStore


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def app_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def job_store(request: Request) -> JobStore:
    store: JobStore = request.app.state.store
    return store


def job_manager(request: Request) -> JobManager:
    jobs: JobManager = request.app.state.jobs
    return jobs


def request_owner(request: Request) -> str:
    owner: str = request.scope["state"]["owner"]
    return owner


SettingsDep = Annotated[Settings, Depends(app_settings)]
MetricsDep = Annotated[Metrics, Depends(app_metrics)]
StoreDep = Annotated[JobStore, Depends(job_store)]
JobsDep = Annotated[JobManager, Depends(job_manager)]
OwnerDep = Annotated[str, Depends(request_owner)]
