"""Errors as RFC 9457 ``application/problem+json``, with stable ``code`` strings.

The mapping from error codes to HTTP statuses lives here and only here (``STATUS``).
"""

from __future__ import annotations

import json
import os
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from dsp.errors import InputError

PROBLEM_MEDIA_TYPE = "application/problem+json"

#: code -> (HTTP status, title). Audio we cannot read at all is 415; audio we can read but
#: cannot analyse (mono, too short...) is 422; too big or too long is 413.
STATUS: dict[str, tuple[int, str]] = {
    # transport
    "upload.too_large": (413, "Upload too large"),
    "upload.missing_file": (422, "No file in the upload"),
    "upload.malformed": (400, "Malformed multipart body"),
    "upload.unsupported_media_type": (415, "Send multipart/form-data"),
    "upload.timeout": (408, "Upload too slow or stalled"),
    # request parameters
    "request.invalid": (422, "Invalid request parameters"),
    "config.invalid": (422, "Invalid analysis parameters"),
    "verbal.unavailable": (422, "Verbal mirroring is not installed on this server"),
    "callback.not_configured": (422, "Callbacks are not enabled on this server"),
    "callback.not_allowed": (422, "Callback URL not allowed"),
    "idempotency.key_reused": (422, "Idempotency-Key reused with a different request"),
    # audio (dsp.errors codes)
    "audio.empty": (422, "Empty audio"),
    "audio.undecodable": (415, "Not readable as audio"),
    "audio.truncated": (422, "Truncated audio"),
    "audio.not_stereo": (422, "Audio is not stereo"),
    "audio.too_many_channels": (422, "Audio has more than two channels"),
    "audio.too_short": (422, "Audio too short"),
    "audio.too_long": (413, "Audio too long"),
    "audio.bad_sample_rate": (422, "Unsupported sample rate"),
    "audio.non_finite": (422, "Audio holds NaN or infinite samples"),
    "audio.invalid": (422, "Unusable audio"),
    "input.invalid": (422, "Unusable input"),
    "input.not_found": (422, "Input not found"),
    "sync.too_long": (413, "Too long for the synchronous endpoint"),
    # auth
    "auth.missing": (401, "Authentication required"),
    "auth.invalid": (401, "Invalid API key"),
    # jobs
    "job.not_found": (404, "Analysis not found"),
    "job.not_ready": (409, "Analysis not completed yet"),
    "job.failed": (409, "Analysis failed"),
    # live streams
    "stream.not_found": (404, "Stream not found"),
    # generic
    "not_found": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed"),
    "server.busy": (503, "Server busy"),
    "server.not_ready": (503, "Server not ready"),
    "server.unavailable": (503, "Database unavailable"),
    "server.audio_store_unavailable": (503, "Audio store unavailable"),
    "internal": (500, "Internal server error"),
}

#: Codes a failed job may carry (besides audio.* and config.*): not HTTP errors themselves.
JOB_FAILURE_CODES = {
    "job.interrupted": "The server stopped while analysing and the job could not be resumed.",
    "job.audio_missing": "The job's audio was gone from the audio store when a worker took it.",
    "internal": "Mirrorline failed on this recording (a bug); please report the job id.",
}


class Problem(Exception):
    """An error to answer with problem+json; ``code`` picks the status from ``STATUS``."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}

    @property
    def status(self) -> int:
        return status_of(self.code)


def status_of(code: str) -> int:
    """The HTTP status of an error code (500 for unknown codes: they are bugs)."""
    if code in STATUS:
        return STATUS[code][0]
    return 422 if code.startswith(("audio.", "input.", "config.")) else 500


def from_input_error(exc: InputError, path: str | os.PathLike[str] | None = None) -> Problem:
    """The problem for a ``dsp.errors.InputError`` raised by decoding or analysis of the
    upload stored at ``path`` (never shown: see :func:`without_path`)."""
    return Problem(exc.code, exc.message if path is None else without_path(exc.message, path))


def without_path(message: str, path: str | os.PathLike[str]) -> str:
    """``message`` with the server-side path of an upload (and its stored name) replaced
    by "the upload": where the server keeps files is nobody else's business."""
    full = os.fspath(path)
    return message.replace(full, "the upload").replace(os.path.basename(full), "the upload")


def problem_body(
    code: str, detail: str, *, instance: str | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The RFC 9457 document of one error (type, title, status, detail, instance, code)."""
    status = status_of(code)
    title = STATUS.get(code, (status, HTTPStatus(status).phrase))[1]
    body: dict[str, Any] = {
        "type": f"urn:mirrorline:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    if extra:
        body.update(extra)
    return body


def problem_response(
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """A ``Response`` carrying the problem document with the right status and media type."""
    body = problem_body(code, detail, instance=instance, extra=extra)
    return Response(
        json.dumps(body, default=str),
        status_code=body["status"],
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def validation_errors(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic/FastAPI errors reduced to JSON-safe {loc, msg, type}."""
    return [
        {
            "loc": [str(x) for x in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in errors
    ]
