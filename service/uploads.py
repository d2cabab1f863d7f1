"""Streaming multipart upload with a hard size cap, written straight to disk.

Starlette's form parser spools files without any size limit, so the routes read the raw
request stream themselves: the ``Content-Length`` is checked before a byte is read, then
bytes are counted while the ``file`` part streams to a file under the data directory.
Nothing is ever held whole in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header

from service.problems import Problem

FILE_FIELD = "file"
MAX_FIELDS = 32
MAX_FIELD_BYTES = 4096
# multipart framing (boundaries, part headers, small form fields) on top of the file itself
FRAMING_ALLOWANCE_BYTES = 64 * 1024


@dataclass
class Upload:
    """One parsed upload: the audio saved at ``path`` and the form fields as strings."""

    path: Path
    filename: str | None
    size_bytes: int
    sha256: str
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def clean_filename(raw: str) -> str | None:
    """The base name of a client's filename, without control characters (a NUL byte,
    newlines), at most 255 characters; None when nothing is left."""
    printable = "".join(ch for ch in raw if ch.isprintable() or ch == " ")
    return Path(printable.replace("\\", "/")).name.strip()[:255] or None


def safe_suffix(filename: str | None) -> str:
    """The file extension to store an upload under: a dot and 1-7 letters or digits, else ''."""
    suffix = Path(filename or "").suffix
    return suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,7}", suffix) else ""


def too_large(max_bytes: int) -> Problem:
    # Connection: close, so the client stops sending the rest of a body we will not read.
    return Problem(
        "upload.too_large",
        f"the upload exceeds the limit of {max_bytes / 1e6:g} MB (MIRRORLINE_MAX_UPLOAD_MB)",
        headers={"Connection": "close"},
    )


def check_declared_length(headers: Any, max_bytes: int) -> None:
    """Refuse (413) before reading when ``Content-Length`` already exceeds the limit."""
    raw = headers.get("content-length")
    if raw is None:
        return
    try:
        length = int(raw)
    except ValueError:
        raise Problem("upload.malformed", "Content-Length is not a number") from None
    if length > max_bytes + FRAMING_ALLOWANCE_BYTES:
        raise too_large(max_bytes)


class _Receiver:
    """python-multipart callbacks: fields into a dict, the file part onto disk."""

    def __init__(self, path: Path, max_bytes: int, charset: str) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.charset = charset
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.file: BinaryIO | None = None
        self.file_seen = False
        self.file_done = False  # the file part's closing boundary arrived
        self.ended = False  # the body's final boundary (--boundary--) arrived
        self.size = 0
        self.digest = hashlib.sha256()
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name: str | None = None
        self._is_file = False
        self._data = bytearray()

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_end": self.on_end,
        }

    def on_end(self) -> None:
        self.ended = True

    def _decode(self, raw: bytes) -> str:
        try:
            return raw.decode(self.charset)
        except (UnicodeDecodeError, LookupError):
            return raw.decode("latin-1")

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._name = None
        self._is_file = False
        self._data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise Problem("upload.malformed", "a multipart part has no name")
        self._name = self._decode(options[b"name"])
        if self._name == FILE_FIELD:
            if self.file_seen:
                raise Problem("request.invalid", "send exactly one part named 'file'")
            self.file_seen = True
            self._is_file = True
            if b"filename" in options:
                self.filename = clean_filename(self._decode(options[b"filename"]))
            self.file = self.path.open("wb")
        elif b"filename" in options:  # a file sent under another name (audio=@call.wav)
            raise Problem(
                "upload.missing_file",
                f"the recording came in a part named {self._name!r}; send it in the part "
                "named 'file' (curl -F file=@call.wav)",
            )
        elif len(self.fields) >= MAX_FIELDS:
            raise Problem("request.invalid", f"too many form fields (at most {MAX_FIELDS})")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._is_file:
            self.size += len(chunk)
            if self.size > self.max_bytes:
                raise too_large(self.max_bytes)
            self.digest.update(chunk)
            assert self.file is not None
            self.file.write(chunk)
        else:
            if len(self._data) + len(chunk) > MAX_FIELD_BYTES:
                raise Problem(
                    "request.invalid", f"form field {self._name!r} is over {MAX_FIELD_BYTES} bytes"
                )
            self._data.extend(chunk)

    def on_part_end(self) -> None:
        if self._is_file:
            assert self.file is not None
            self.file.close()
            self.file_done = True
        elif self._name is not None:
            if self._name in self.fields:
                raise Problem("request.invalid", f"form field {self._name!r} sent twice")
            self.fields[self._name] = self._decode(bytes(self._data))

    def close(self) -> None:
        if self.file is not None and not self.file.closed:
            self.file.close()


def too_slow(detail: str) -> Problem:
    return Problem("upload.timeout", detail, headers={"Connection": "close"})


async def _paced(
    stream: AsyncIterator[bytes], idle_timeout_s: float, min_bytes_per_s: float
) -> AsyncIterator[bytes]:
    """``stream``'s chunks, refused (408 ``upload.timeout``) when nothing arrives for
    ``idle_timeout_s`` (a stalled client, or a ``Content-Length`` larger than the body) or
    when, past that first stretch, the average rate falls under ``min_bytes_per_s`` (a
    trickle that would hold a descriptor and a partial file for ever)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    received = 0
    iterator = stream.__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(iterator.__anext__(), timeout=idle_timeout_s)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise too_slow(
                f"the upload sent nothing for {idle_timeout_s:g} s (stalled, or its "
                "Content-Length is larger than the body); send it again"
            ) from None
        received += len(chunk)
        elapsed = loop.time() - started
        if min_bytes_per_s and elapsed > idle_timeout_s and received < min_bytes_per_s * elapsed:
            raise too_slow(
                f"the upload arrives at {received / elapsed:.0f} B/s, under the "
                f"{min_bytes_per_s:g} B/s this server needs (MIRRORLINE_UPLOAD_MIN_BYTES_PER_S)"
            )
        yield chunk


async def receive_upload(
    headers: Any,
    stream: AsyncIterator[bytes],
    *,
    upload_dir: Path,
    max_bytes: int,
    idle_timeout_s: float = 30.0,
    min_bytes_per_s: float = 0.0,
) -> Upload:
    """Parse a ``multipart/form-data`` request into an ``Upload`` (file on disk, fields).

    Raises ``Problem`` (413 ``upload.too_large``, 415, 400, 422 ``upload.missing_file``);
    on any error the partial file is deleted.
    """
    content_type = headers.get("content-type", "")
    media_type, params = parse_options_header(content_type)
    if media_type != b"multipart/form-data":
        raise Problem(
            "upload.unsupported_media_type",
            "send the recording as multipart/form-data with the audio in a part named 'file' "
            f"(got Content-Type {content_type or 'none'!r})",
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise Problem("upload.malformed", "the multipart Content-Type has no boundary")
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    check_declared_length(headers, max_bytes)
    upload_dir.mkdir(parents=True, exist_ok=True)
    path = upload_dir / f"{uuid.uuid4().hex}.upload"
    receiver = _Receiver(path, max_bytes, charset)
    total = 0
    limit = max_bytes + FRAMING_ALLOWANCE_BYTES
    try:
        parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
        async for chunk in _paced(stream, idle_timeout_s, min_bytes_per_s):
            total += len(chunk)
            if total > limit:
                raise too_large(max_bytes)
            parser.write(chunk)
        parser.finalize()
    except Problem:
        receiver.close()
        path.unlink(missing_ok=True)
        raise
    except Exception as exc:  # python-multipart's own parse errors
        receiver.close()
        path.unlink(missing_ok=True)
        raise Problem("upload.malformed", f"could not parse the multipart body: {exc}") from None
    receiver.close()
    if receiver.file_seen and not receiver.file_done:
        path.unlink(missing_ok=True)
        raise Problem(
            "audio.truncated",
            "the upload ended inside the recording, before its multipart boundary: it was cut "
            "short in transfer (or its Content-Length is too small); send it again",
        )
    if not receiver.ended:
        path.unlink(missing_ok=True)
        raise Problem(
            "upload.malformed",
            "the multipart body ended before its closing boundary: it was cut short in "
            "transfer (or its Content-Length is too small); send it again",
        )
    if not receiver.file_seen:
        path.unlink(missing_ok=True)
        raise Problem(
            "upload.missing_file",
            "the upload has no part named 'file' holding the recording (curl -F file=@call.wav)",
        )
    return Upload(
        path=path,
        filename=receiver.filename,
        size_bytes=receiver.size,
        sha256=receiver.digest.hexdigest(),
        fields=receiver.fields,
    )
