"""Response and query schemas of the HTTP API (the report itself is ``models.report``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.params import AnalysisConfig
from models.report import Report

JobStatus = Literal["queued", "processing", "completed", "failed"]


class JobError(BaseModel):
    code: str = Field(description="Stable error code, e.g. audio.not_stereo, job.interrupted.")
    message: str


class JobOut(BaseModel):
    """An analysis job. ``report`` is present (on GET of one job) once completed."""

    id: str
    status: JobStatus
    url: str = Field(description="This job's URL.")
    created_at: str = Field(description="ISO 8601 UTC.")
    started_at: str | None = None
    finished_at: str | None = None
    expires_at: str | None = Field(
        None, description="When the result and any kept audio are deleted (ISO 8601 UTC)."
    )
    filename: str | None = None
    size_bytes: int
    config: AnalysisConfig
    callback_url: str | None = None
    keep_audio: bool
    audio_stored: bool = Field(description="Whether the uploaded audio is still stored.")
    attempts: int
    error: JobError | None = Field(None, description="Why the job failed (status failed).")
    windows_csv_url: str | None = None
    report: Report | None = None


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None = Field(
        None, description="Pass as ?cursor= to get the next page; null on the last page."
    )


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(20, ge=1, le=100, description="Jobs per page.")
    cursor: str | None = Field(None, max_length=200, description="From a previous page.")
    status: JobStatus | None = Field(None, description="Only jobs in this status.")


class Health(BaseModel):
    status: str


PROBLEM_SCHEMA: dict[str, Any] = {
    "application/problem+json": {
        "schema": {
            "type": "object",
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "instance": {"type": "string"},
                "code": {"type": "string"},
                "request_id": {"type": "string"},
            },
            "required": ["type", "title", "status", "detail", "code"],
        }
    }
}


def upload_body(*, with_job_fields: bool) -> dict[str, Any]:
    """OpenAPI requestBody of the multipart upload (parsed by hand, so declared by hand)."""
    properties: dict[str, Any] = {
        "file": {"type": "string", "format": "binary", "description": "The stereo recording."}
    }
    for name, prop in AnalysisConfig.model_json_schema()["properties"].items():
        properties[name] = prop
    if with_job_fields:
        properties["callback_url"] = {
            "type": "string",
            "format": "uri",
            "description": "Webhook called on completion or failure (needs a server secret).",
        }
        properties["keep_audio"] = {
            "type": "boolean",
            "default": False,
            "description": "Keep the audio after analysis (until the result expires).",
        }
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": properties, "required": ["file"]}
            }
        },
    }
