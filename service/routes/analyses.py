"""The analysis routes: ``POST /v1/analyze`` (a short call, analysed now), ``POST
/v1/analyses`` (a job), ``GET /v1/analyses`` (the caller's jobs), ``GET`` and ``DELETE
/v1/analyses/{job_id}`` and ``GET /v1/analyses/{job_id}/windows.csv``.

Thin like the other routes: parse and validate the upload, hand CPU work to
``service.jobs`` (a process pool, never the event loop), and answer JSON or
``application/problem+json``. ``service.app.create_app`` includes :data:`router`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.responses import Response

from dsp.errors import InputError
from dsp.verbal import require_recognizer
from models.params import AnalysisConfig
from models.report import Report
from service.jobs import JobManager, result_url
from service.problems import Problem, from_input_error, validation_errors
from service.routes import report_page
from service.routes.deps import JobsDep, OwnerDep, SettingsDep, StoreDep
from service.routes.jobs import completed_job, find_job
from service.schemas import JobOut, JobPage, ListQuery, skipped_metrics, upload_body
from service.settings import Settings
from service.store import Job, JobStore, decode_cursor, encode_cursor
from service.uploads import Upload, receive_upload, safe_suffix
from service.webhooks import check_callback

log = logging.getLogger("mirrorline.api")

CONFIG_FIELDS = set(AnalysisConfig.model_fields)
JOB_FIELDS = frozenset({"callback_url", "keep_audio"})
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}

router = APIRouter()


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return (
        datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


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
        config = AnalysisConfig.model_validate(values)
    except ValidationError as exc:
        errors = validation_errors(exc.errors(include_url=False))
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
    if config.verbal:
        try:
            require_recognizer()
        except InputError as exc:  # verbal.unavailable, before anything is queued
            raise from_input_error(exc) from None
    return config


def _parse_bool(name: str, raw: str | None) -> bool:
    if raw is None:
        return False
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise Problem("request.invalid", f"{name} must be true or false, not {raw!r}")


def _base_url(settings: Settings) -> str:
    """Where job URLs start: ``PUBLIC_BASE_URL``, else nothing (URLs relative to this
    server). Never the request's ``Host`` header, which the client chooses: trusting it would
    let anyone make Location headers and webhook ``result_url`` point elsewhere."""
    return (settings.public_base_url or "").rstrip("/")


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


async def _read_upload(request: Request, jobs: JobManager, settings: Settings) -> Upload:
    return await receive_upload(
        request.headers,
        request.stream(),
        upload_dir=jobs.upload_dir,
        max_bytes=settings.max_upload_bytes,
        idle_timeout_s=settings.upload_idle_timeout_s,
        min_bytes_per_s=settings.upload_min_bytes_per_s,
    )


# -- analyses -------------------------------------------------------------------------


@router.post(
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
    jobs: JobsDep,
    settings: SettingsDep,
    format: Annotated[
        Literal["json", "html"] | None,
        Query(
            description="json: the report (default); html: the call report page (also "
            "chosen by Accept: text/html)"
        ),
    ] = None,
) -> Response:
    if len(jobs.slots.waiters) >= jobs.slots.max_waiters:
        raise Problem(
            "server.busy",
            "too many analyses are waiting; retry later",
            headers={"Retry-After": str(settings.retry_after_s)},
        )
    upload = await _read_upload(request, jobs, settings)
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


@router.post(
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
async def submit(
    request: Request, jobs: JobsDep, store: StoreDep, settings: SettingsDep, owner: OwnerDep
) -> Response:
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 255:
        raise Problem("request.invalid", "Idempotency-Key must be 1 to 255 characters")
    if key is None:
        jobs.check_queue()  # refuse early, before reading a large upload
    upload = await _read_upload(request, jobs, settings)
    keep = False
    try:
        fields = dict(upload.fields)
        callback = fields.pop("callback_url", None)
        keep = _parse_bool("keep_audio", fields.pop("keep_audio", None))
        config = _parse_config(fields, JOB_FIELDS)
        if callback:
            callback = await check_callback(callback, settings)
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


def _replayed(store: JobStore, owner: str, key: str | None, fingerprint: str) -> Job | None:
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


@router.get(
    "/v1/analyses",
    tags=["analyses"],
    summary="List your analyses, newest first (cursor pagination)",
    response_model=JobPage,
)
async def list_jobs(
    query: Annotated[ListQuery, Query()], store: StoreDep, owner: OwnerDep
) -> Response:
    after = None
    if query.cursor is not None:
        after = decode_cursor(query.cursor)
        if after is None:
            raise Problem("request.invalid", "cursor: not a cursor from a previous page")
    found = store.list_jobs(owner=owner, limit=query.limit + 1, after=after, status=query.status)
    page = found[: query.limit]
    more = len(found) > query.limit
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more and page else None
    return _json({"items": [_job_out(j) for j in page], "next_cursor": next_cursor})


@router.get(
    "/v1/analyses/{job_id}",
    tags=["analyses"],
    summary="Status of an analysis; the report once completed",
    response_model=JobOut,
)
async def read_job(request: Request, job_id: str, store: StoreDep) -> Response:
    job = find_job(request, job_id)
    report = None
    if job.status == "completed":
        report, _ = store.result(job.id)
    return _json(_job_out(job, report))


@router.get(
    "/v1/analyses/{job_id}/windows.csv",
    tags=["analyses"],
    summary="The windowed time series of a completed analysis as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def read_csv(request: Request, job_id: str, store: StoreDep) -> Response:
    job = completed_job(request, job_id)
    _, csv_text = store.result(job.id)
    return Response(
        csv_text or "",
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{job.id}-windows.csv"'},
    )


@router.delete(
    "/v1/analyses/{job_id}",
    tags=["analyses"],
    summary="Delete an analysis, its result and any stored audio",
    status_code=204,
    response_class=Response,
)
async def delete_job(job_id: str, jobs: JobsDep, owner: OwnerDep) -> Response:
    if not jobs.delete(job_id, owner):
        raise Problem("job.not_found", f"no analysis {job_id!r}")
    log.info("job deleted", extra={"job_id": job_id})
    return Response(status_code=204)
