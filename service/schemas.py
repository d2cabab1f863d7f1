"""Response and query schemas of the HTTP API (the report itself is ``models.report``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.params import AnalysisConfig
from models.report import Report, SkippedMetric

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
    progress: float | None = Field(
        None,
        description="0.0 queued; while processing, the share of the call decoded and tracked "
        "so far (at most 0.99, updated about once a second; null when the file does not "
        "declare its duration: see processed_s); 1.0 completed; null failed.",
    )
    processed_s: float | None = Field(
        None, description="While processing: seconds of audio analysed so far."
    )
    skipped: list[SkippedMetric] | None = Field(
        None,
        description="Completed jobs (GET of one job): every metric of the report that is "
        "null, and why.",
    )
    windows_csv_url: str | None = None
    report: Report | None = None


_SPEAKER_REASONS = (
    # (path under speakers.<role>, value tested for null, reason)
    ("pitch", ("pitch", "median_hz"), "too little voiced speech"),
    ("loudness", ("loudness", "median_db"), "too little speech"),
    (
        "rate.speaking_rate_syl_per_s",
        ("rate", "speaking_rate_syl_per_s"),
        "too little speech in turns",
    ),
    (
        "rate.articulation_rate_syl_per_s",
        ("rate", "articulation_rate_syl_per_s"),
        "too little phonation (speech between pauses)",
    ),
    ("talk_ratio", ("talk_ratio",), "nobody spoke"),
    (
        "response_latency_median_s",
        ("response_latency_median_s",),
        "no turn of this speaker answers one of the partner's",
    ),
    ("longest_monologue_s", ("longest_monologue_s",), "no turns"),
    ("median_pause_s", ("median_pause_s",), "no pause inside a turn"),
)

_SCORE_FEATURES = {
    "tone": ("pitch_level", "pitch_variability", "loudness"),
    "tempo": ("speaking_rate", "articulation_rate"),
}


_MISSING = object()


def _get(data: Any, keys: tuple[str, ...]) -> Any:
    """``data[k0][k1]...``, or ``_MISSING`` when a level is absent (never None by accident)."""
    for key in keys:
        if not isinstance(data, Mapping) or key not in data:
            return _MISSING
        data = data[key]
    return data


def _reasons(node: Any, path: str, out: list[dict[str, str]]) -> None:
    """Every object under ``node`` with a ``reason``: its value is null for that reason."""
    if not isinstance(node, Mapping):
        return
    reason = node.get("reason")
    if isinstance(reason, str) and reason:
        # a feature's own reason is why its verdict ``mirrored`` is null
        metric = f"{path}.mirrored" if "mirrored" in node else path
        parts = dict.fromkeys(part.strip() for part in reason.split(";"))  # drop repeats
        out.append({"metric": metric, "reason": "; ".join(p for p in parts if p)})
    for key, value in node.items():
        _reasons(value, f"{path}.{key}", out)


def skipped_metrics(report: Mapping[str, Any]) -> list[dict[str, str]]:
    """The metrics of a report (as JSON data) that are null, each with the reason.

    Covers the speakers' summary statistics (pitch, loudness, rates, talk ratio, response
    latency, longest monologue, median pause), every mirroring result that carries a
    ``reason`` (proximity, convergence, synchrony, a feature's verdict) and the mirroring
    scores. Per-window values (null in quiet windows) are not listed.

    Parameters
    ----------
    report : Mapping
        A report as parsed JSON (``models.report.Report`` dumped in JSON mode).

    Returns
    -------
    list of dict
        ``[{"metric": dotted path in the report, "reason": text}, ...]`` in report order;
        empty when nothing is null. Never raises on a partial report.
    """
    out: list[dict[str, str]] = []
    speakers = report.get("speakers")
    if isinstance(speakers, Mapping):
        for role, speaker in speakers.items():
            for name, keys, reason in _SPEAKER_REASONS:
                if _get(speaker, keys) is None:
                    out.append({"metric": f"speakers.{role}.{name}", "reason": reason})
    if "mirroring" in report and report["mirroring"] is None:
        out.append({"metric": "mirroring", "reason": "mirroring was not measured"})
        return out
    mirroring = report.get("mirroring")
    if not isinstance(mirroring, Mapping):
        return out
    features = mirroring.get("features")
    if isinstance(features, Mapping):
        for name, feature in features.items():
            _reasons(feature, f"mirroring.features.{name}", out)
    scores = mirroring.get("scores")
    if isinstance(scores, Mapping):
        for dimension, pair in scores.items():
            if not isinstance(pair, Mapping):
                continue
            for role, score in pair.items():
                if score is not None:
                    continue
                other = "customer" if role == "agent" else "agent"
                names = ", ".join(_SCORE_FEATURES.get(dimension, ()))
                out.append(
                    {
                        "metric": f"mirroring.scores.{dimension}.{role}",
                        "reason": f"no {dimension} feature ({names}) has a synchrony "
                        f"result for {role}_follows_{other}",
                    }
                )
    return out


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None = Field(
        None, description="Pass as ?cursor= to get the next page; null on the last page."
    )


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(20, ge=1, le=100, description="Jobs per page.")
    cursor: str | None = Field(
        None,
        max_length=200,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Opaque: the `next_cursor` of the previous page, as it came (URL-safe "
        "base64 without padding). Anything else is 422 `request.invalid`.",
    )
    status: JobStatus | None = Field(None, description="Only jobs in this status.")


class Health(BaseModel):
    status: str
    checks: dict[str, str] | None = Field(
        default=None,
        description="/readyz: each dependency, 'ok' or what is wrong: database (SQLite or "
        "PostgreSQL), queue (the local dispatcher, or the PostgreSQL task queue and its "
        "live workers).",
    )


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
            "description": "Webhook called on completion or failure (needs a server secret; "
            "public addresses only unless the server allows private ones).",
        }
        properties["keep_audio"] = {
            "type": "boolean",
            "default": False,
            "description": "Keep the audio after analysis (until the result expires).",
        }
    return {
        "required": True,
        "description": "The recording in the part `file`; any other field name is refused "
        "(422 `request.invalid`, naming the allowed fields; a file under another name is 422 "
        "`upload.missing_file`). Analysis parameters out of range are 422 `config.invalid`.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": properties,
                    "required": ["file"],
                    "additionalProperties": False,
                }
            }
        },
    }


class StreamFrames(BaseModel):
    received: int = Field(description="Audio frames received (both tracks).")
    placed: int = Field(description="Frames placed in the call's timeline.")
    duplicates: int = Field(description="Frames dropped: the same position was received.")
    late: int = Field(description="Frames dropped: they came after their place was released.")
    too_far: int = Field(description="Frames refused: a timestamp far past the audio so far.")


class StreamOut(BaseModel):
    """A live stream (WS /v1/streams/twilio, /audiohook or /raw): its state and, once ended, the
    analysis its audio became (docs/live.md)."""

    id: str = Field(
        description="The call id: Twilio callSid, AudioHook conversationId or the raw start "
        "message's id."
    )
    protocol: Literal["twilio", "audiohook", "raw"]
    state: Literal["live", "ended"]
    started_at: str = Field(description="ISO 8601 UTC.")
    ended_at: str | None = None
    end_reason: Literal["stop", "disconnect", "idle", "too_long", "error", "shutdown"] | None
    audio_s: float = Field(description="Seconds of stereo audio received and placed.")
    sample_rate_hz: int
    agent_channel: Literal[0, 1]
    channels: list[str] = Field(description="What channel 0 and channel 1 carry.")
    frames: StreamFrames
    filled_s: list[float] = Field(
        description="Per channel, seconds filled with silence where no frame came."
    )
    events_url: str = Field(description="Server-Sent Events of the live measures.")
    analysis_id: str | None = Field(
        None, description="The analysis of the whole call, once the stream ended."
    )
    analysis_url: str | None = None
    analysis_status: JobStatus | Literal["deleted"] | None = None
    error: JobError | None = Field(None, description="Why the stream ended badly, if it did.")
