"""Job audio in an S3-compatible object store (``MIRRORLINE_AUDIO_STORE_URL=s3://bucket/prefix``).

Multi-node mode only, instead of the audio rows in PostgreSQL: an API node uploads a job's
audio as one object (``<prefix>/<job id>``) before the job's row commits, a worker node
downloads it, and it is deleted after the analysis or with the job (``service.pgstore``).

The client is boto3 (the AWS SDK, well kept, Apache-2.0), configured the standard AWS way so
every S3-compatible store works without Mirrorline settings of its own: the endpoint of
MinIO, Ceph or R2 from ``AWS_ENDPOINT_URL_S3`` (path-style addressing then, which they all
take), region and credentials from the usual chain (``AWS_REGION``,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``~/.aws``, an instance
role). Short timeouts and three tries per call: an unreachable store answers a request in
seconds (503 ``server.audio_store_unavailable``), not minutes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dsp.errors import MirrorlineError, ParameterError

log = logging.getLogger("mirrorline.s3audio")

SCHEME = "s3://"
INSTALL = "pip install 'mirrorline[s3]'"


class AudioStoreUnavailable(MirrorlineError):
    """The audio store did not answer (or refused): nothing was changed, retry later."""

    code = "server.audio_store_unavailable"


def open_audio_store(url: str | None) -> S3Audio | None:
    """The audio store of ``AUDIO_STORE_URL`` (None: audio stays in PostgreSQL), checked:
    a node does not start with a bucket it cannot reach."""
    if url is None:
        return None
    store = S3Audio(url)
    store.check()
    return store


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")`` (prefix may be empty)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError("must be an s3://bucket or s3://bucket/prefix URL")
    return parts.netloc, parts.path.strip("/")


class S3Audio:
    """Put, get and delete each job's audio as one object of ``bucket`` under ``prefix``."""

    def __init__(self, url: str) -> None:
        try:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise ParameterError(
                f"MIRRORLINE_AUDIO_STORE_URL ({url}) needs the s3 extra: {INSTALL}"
            ) from None
        self.bucket, self.prefix = parse_url(url)
        self._errors: tuple[type[Exception], ...] = (BotoCoreError, ClientError)
        self._client_error = ClientError
        config = Config(
            connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3}
        )
        self.client: Any = boto3.session.Session().client("s3", config=config)

    def key(self, job_id: str) -> str:
        return f"{self.prefix}/{job_id}" if self.prefix else job_id

    def url_of(self, job_id: str) -> str:
        return f"{SCHEME}{self.bucket}/{self.key(job_id)}"

    def _unavailable(self, what: str, exc: Exception) -> AudioStoreUnavailable:
        message = f"the audio store s3://{self.bucket} could not {what}"
        log.warning("%s: %s: %s", message, exc.__class__.__name__, exc)
        return AudioStoreUnavailable(f"{message} ({exc.__class__.__name__})")

    def check(self) -> None:
        """Raise :class:`AudioStoreUnavailable` unless the bucket answers to us."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except self._errors as exc:
            raise self._unavailable("be reached", exc) from exc

    def put(self, job_id: str, path: Path) -> str:
        """Upload ``path`` as the job's audio (multipart for large files; a failed upload
        is aborted, leaving no object); returns the object's ``s3://`` URL."""
        try:
            self.client.upload_file(str(path), self.bucket, self.key(job_id))
        except self._errors as exc:
            raise self._unavailable("store the upload", exc) from exc
        return self.url_of(job_id)

    def get(self, job_id: str, target: Path) -> bool:
        """Download the job's audio into ``target``; False when there is no such object."""
        try:
            self.client.download_file(self.bucket, self.key(job_id), str(target))
        except self._client_error as exc:
            if _status(exc) == 404:
                target.unlink(missing_ok=True)
                return False
            raise self._unavailable("read the job's audio", exc) from exc
        except self._errors as exc:
            raise self._unavailable("read the job's audio", exc) from exc
        return True

    def exists(self, job_id: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(job_id))
        except self._client_error as exc:
            if _status(exc) == 404:
                return False
            raise self._unavailable("be reached", exc) from exc
        except self._errors as exc:
            raise self._unavailable("be reached", exc) from exc
        return True

    def delete(self, job_id: str) -> bool:
        """Delete the job's audio (no object: nothing to do); False, logged, when the store
        cannot be reached (a bucket lifecycle rule removes such leftovers: docs/deploy.md)."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(job_id))
        except self._errors as exc:
            log.warning(
                "job audio not deleted from the audio store: %s: %s",
                exc.__class__.__name__,
                exc,
                extra={"job_id": job_id},
            )
            return False
        return True


def _status(exc: Any) -> int | None:
    """HTTP status of a botocore ClientError (404 for a missing key or bucket)."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None
