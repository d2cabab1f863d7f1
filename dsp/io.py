"""Decode any call recording into channels-first float32 blocks.

Decoding goes through PyAV (FFmpeg's libraries, shipped inside the wheel: no system ffmpeg),
so every container and codec call platforms send is read the same way: WAV (PCM 8-32 bit,
float, mu-law, A-law), FLAC, OGG/Vorbis, Opus (ogg, webm), MP3, M4A/AAC.

Audio is never upsampled: 8 kHz telephony stays 8 kHz. Rates above ``max_rate_hz``
(16 kHz by default: nothing we measure lives above 8 kHz) are downsampled while decoding,
which also bounds memory. :func:`iter_blocks` streams fixed-length blocks so a long call is
never held whole; :func:`decode` collects them for callers that want one array.
"""

from __future__ import annotations

import io
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from dsp.errors import (
    AudioBadRate,
    AudioEmpty,
    AudioNonFinite,
    AudioNotStereo,
    AudioTooLong,
    AudioTooManyChannels,
    AudioTooShort,
    AudioTruncated,
    AudioUndecodable,
    FileMissing,
    ParameterError,
)

Source = str | os.PathLike[str] | bytes | IO[bytes]

MIN_RATE_HZ = 8000
MAX_INPUT_RATE_HZ = 192000
DEFAULT_MAX_RATE_HZ = 16000
MIN_DURATION_S = 0.5
# Float samples beyond this many times full scale (+80 dB) are not audio: garbage read as
# floats, or a gain gone wrong. They are refused (audio.non_finite), not analysed.
MAX_SAMPLE_MAGNITUDE = 1e4
# A file whose decoded audio ends this much before its declared duration is truncated.
TRUNCATION_TOLERANCE_S = 0.25


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about the recording, and the rate we analyse at."""

    codec: str
    container: str
    channels: int
    native_rate_hz: int
    sample_rate_hz: int
    declared_duration_s: float | None
    #: Whether ``declared_duration_s`` is written in the file (WAV/FLAC/MP4 headers, WebM
    #: segment info, an MP3 Xing/Info/VBRI frame) rather than estimated from the bitrate
    #: (MP3 without one, raw AAC): only a written duration can show a cut-short file.
    duration_exact: bool = True
    #: False for an Ogg stream whose last page lacks the end-of-stream mark (cut short, or a
    #: recorder that never closed the file); None when the container has no such mark.
    ends_cleanly: bool | None = None


@dataclass(frozen=True)
class DecodedAudio:
    """A whole decoded recording: ``samples`` is ``(2, n)`` float32 at ``info.sample_rate_hz``."""

    samples: npt.NDArray[np.float32]
    info: AudioInfo

    @property
    def sample_rate_hz(self) -> int:
        return self.info.sample_rate_hz

    @property
    def duration_s(self) -> float:
        return self.samples.shape[1] / self.info.sample_rate_hz


def _open(source: Source) -> Any:
    import av

    if isinstance(source, bytes | bytearray):
        if len(source) == 0:
            raise AudioEmpty("the upload is empty (0 bytes); send a stereo call recording")
        handle: Any = io.BytesIO(source)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.exists():
            raise FileMissing(f"no such file: {path}; give the path of a stereo call recording")
        if path.is_dir():
            raise FileMissing(f"{path} is a folder; give the path of an audio file")
        if path.stat().st_size == 0:
            raise AudioEmpty(f"{path} is empty (0 bytes); give a stereo call recording")
        handle = str(path)
    else:
        handle = source
    options = {"max_size": str(_WAV_PACKET_BYTES)}
    if _is_riff_wave(source):
        # The WAV header says all there is to know; FFmpeg's default probe (5 MB) decodes
        # ~5 packets of 1 MiB first: 0.3 s for a 6-minute 16-bit file, 0.03 s with this.
        options["probesize"] = "32"
    try:
        # Tags are not ours to judge: a title in Latin-1 (common in MP3s) must not make the
        # recording unreadable, so undecodable metadata bytes are replaced, not raised.
        return av.open(handle, mode="r", options=options, metadata_errors="replace")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise AudioUndecodable(
            "could not read this as audio "
            f"({exc.__class__.__name__}); send WAV, FLAC, OGG, Opus, WebM, MP3 or M4A"
        ) from None


def _is_riff_wave(source: Source) -> bool:
    """True when ``source`` (bytes or a path) starts with a RIFF/WAVE header."""
    if isinstance(source, bytes | bytearray):
        head = bytes(source[:12])
    elif isinstance(source, str | os.PathLike):
        try:
            with Path(source).open("rb") as handle:
                head = handle.read(12)
        except OSError:
            return False
    else:
        return False
    return head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def _audio_stream(container: Any) -> Any:
    streams = [s for s in container.streams if s.type == "audio"]
    if not streams:
        raise AudioUndecodable(
            "the file has no audio stream; send WAV, FLAC, OGG, Opus, WebM, MP3 or M4A"
        )
    return streams[0]


def _riff_data_shortfall(source: Source) -> int:
    """Bytes a RIFF/WAV file's ``data`` chunk declares beyond the end of the file (0 if none).

    FFmpeg silently trusts the file size over the header, so a WAV cut short in transfer
    would decode as a shorter call; the header's own chunk size tells us it was cut.
    """
    if isinstance(source, bytes | bytearray):
        head, size = bytes(source[:4096]), len(source)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(4096)
    else:
        return 0
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return 0
    offset = 12
    while offset + 8 <= len(head):
        chunk_id = head[offset : offset + 4]
        chunk_size = int.from_bytes(head[offset + 4 : offset + 8], "little")
        if chunk_id == b"data":
            if chunk_size in (0, 0xFFFFFFFF):  # streamed WAVs leave the size open
                return 0
            return max(0, offset + 8 + chunk_size - size)
        offset += 8 + chunk_size + (chunk_size & 1)
    return 0


def _read_span(source: Source, start: int, length: int) -> bytes:
    """``length`` bytes of ``source`` from ``start`` (negative: from the end); b"" when the
    source is a stream we must not read ahead of the decoder."""
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
        begin = max(0, len(data) + start) if start < 0 else start
        return data[begin : begin + length]
    if isinstance(source, str | os.PathLike):
        try:
            with Path(source).open("rb") as handle:
                if start < 0:
                    handle.seek(0, os.SEEK_END)
                    handle.seek(max(0, handle.tell() + start))
                else:
                    handle.seek(start)
                return handle.read(length)
        except OSError:
            return b""
    return b""


def _mp3_has_length_header(source: Source) -> bool:
    """Whether an MP3's first frame is a Xing/Info/VBRI frame (it counts the frames, so
    FFmpeg's duration is exact; without one FFmpeg estimates it from the first bitrate)."""
    head = _read_span(source, 0, 10)
    start = 0
    if head[:3] == b"ID3" and len(head) == 10:  # skip the ID3v2 tag (syncsafe size)
        size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
        start = 10 + size + (10 if head[5] & 0x10 else 0)
    frame = _read_span(source, start, 4096)
    return any(tag in frame for tag in (b"Xing", b"Info", b"VBRI"))


def _ogg_ends_cleanly(source: Source) -> bool | None:
    """Whether the last Ogg page carries the end-of-stream flag (None: cannot tell)."""
    tail = _read_span(source, -65536, 65536)
    at = tail.rfind(b"OggS")
    if at < 0 or at + 6 > len(tail):
        return None
    return bool(tail[at + 5] & 0x04)


def _declared_duration_s(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000.0
    return None


def probe(source: Source, *, max_rate_hz: int = DEFAULT_MAX_RATE_HZ) -> AudioInfo:
    """Read the header only: codec, channels, rates, declared duration. Raises on bad files."""
    container = _open(source)
    try:
        return _info(container, _audio_stream(container), max_rate_hz, source)
    finally:
        container.close()


def _info(container: Any, stream: Any, max_rate_hz: int, source: Source) -> AudioInfo:
    ctx = stream.codec_context
    if ctx is None:
        # FFmpeg found a stream but no decoder for it: a damaged or unknown format tag
        # (a WAV whose tag reads 0x1234, 0, or 0xFFFE without its extension) or a header
        # with 0 bits per sample.
        raise AudioUndecodable(
            "the audio stream's codec cannot be decoded: the header looks damaged or names "
            "a codec we do not read; send WAV, FLAC, OGG, Opus, WebM, MP3 or M4A"
        )
    channels = int(ctx.channels or 0)
    rate = int(ctx.sample_rate or 0)
    if channels == 1:
        raise AudioNotStereo(
            "the recording is mono; Mirrorline needs stereo with one party per channel "
            "(agent on one channel, customer on the other)"
        )
    if channels > 2:
        raise AudioTooManyChannels(
            f"the recording has {channels} channels; send stereo with one party per channel"
        )
    if channels != 2:
        raise AudioUndecodable("the audio stream declares no channels; the file looks damaged")
    if not MIN_RATE_HZ <= rate <= MAX_INPUT_RATE_HZ:
        raise AudioBadRate(
            f"sample rate {rate} Hz is outside {MIN_RATE_HZ}-{MAX_INPUT_RATE_HZ} Hz; "
            "send 8 kHz (telephony) up to 192 kHz (rates above 16 kHz are analysed at 16 kHz)"
        )
    container_name = str(container.format.name).split(",")[0]
    if container_name == "mp3":
        exact = _mp3_has_length_header(source)
    else:
        exact = container_name not in ("aac", "adts")  # raw AAC: estimated from the bitrate
    return AudioInfo(
        codec=str(ctx.name),
        container=container_name,
        channels=channels,
        native_rate_hz=rate,
        sample_rate_hz=min(rate, max_rate_hz),
        declared_duration_s=_declared_duration_s(container, stream),
        duration_exact=exact,
        ends_cleanly=_ogg_ends_cleanly(source) if container_name == "ogg" else None,
    )


def iter_blocks(
    source: Source,
    *,
    block_s: float = 60.0,
    max_rate_hz: int = DEFAULT_MAX_RATE_HZ,
    max_duration_s: float | None = None,
) -> tuple[AudioInfo, Generator[npt.NDArray[np.float32], None, None]]:
    """Open ``source`` and stream it as ``(2, n)`` float32 blocks of ``block_s`` seconds.

    Header problems (not audio, mono, too many channels, bad rate, declared too long) raise
    at once; problems found while decoding (truncation, non-finite samples, too short) raise
    from the iterator. Only the last block may be shorter than ``block_s``.
    """
    if block_s <= 0:
        raise ParameterError(f"block_s must be > 0 s, got {block_s}")
    if max_rate_hz < MIN_RATE_HZ:
        raise ParameterError(f"max_rate_hz must be >= {MIN_RATE_HZ}, got {max_rate_hz}")
    container = _open(source)
    try:
        stream = _audio_stream(container)
        info = _info(container, stream, max_rate_hz, source)
    except BaseException:
        container.close()
        raise
    shortfall = _riff_data_shortfall(source)
    if shortfall > 0:
        container.close()
        raise AudioTruncated(
            f"the WAV header declares {shortfall} more bytes of audio than the file holds: it "
            "was cut short; re-export or re-upload the whole recording"
        )
    declared = info.declared_duration_s
    if max_duration_s is not None and declared is not None and declared > max_duration_s + 1.0:
        container.close()
        raise AudioTooLong(
            f"the recording lasts {declared:.0f} s; the limit is {max_duration_s:.0f} s "
            "(split the call, or raise the limit)"
        )
    return info, _blocks(container, stream, info, block_s, max_duration_s)


# Native sample formats converted in numpy a block at a time (the same arithmetic as
# FFmpeg's swresample: integers scaled by a power of two, so the floats are bit-identical).
_NATIVE_FORMATS: dict[str, tuple[str, float, float]] = {
    "u8": ("u1", 128.0, 1.0 / 128.0),
    "s16": ("<i2", 0.0, 1.0 / 32768.0),
    "s32": ("<i4", 0.0, 1.0 / 2147483648.0),
    "flt": ("<f4", 0.0, 1.0),
    "dbl": ("<f8", 0.0, 1.0),
}
# WAV packets of this many bytes (FFmpeg's default is 4096: ~1000 tiny frames a minute, each
# costing a Python round trip); other demuxers ignore the option.
_WAV_PACKET_BYTES = 1 << 20


def _native_chunk(frame: Any, rate: int) -> npt.NDArray[Any] | None:
    """One decoded frame as a raw ``(2, n)`` array of its native dtype, or None when the frame
    needs FFmpeg's resampler (another rate, layout or an unusual sample format)."""
    fmt = frame.format
    name = fmt.name.rstrip("p")
    if frame.sample_rate != rate or name not in _NATIVE_FORMATS or len(frame.layout.channels) != 2:
        return None
    raw = frame.to_ndarray()
    return raw if fmt.is_planar else raw.reshape(-1, 2).T


def _to_float32(raw: npt.NDArray[Any], fmt: str) -> npt.NDArray[np.float32]:
    _, offset, scale = _NATIVE_FORMATS[fmt]
    # float64 beyond float32's range becomes inf here, and is then refused as non-finite
    # like NaN/inf itself (AudioNonFinite), not printed as a RuntimeWarning.
    with np.errstate(over="ignore", invalid="ignore"):
        out = raw.astype(np.float32)
    if offset:
        out -= np.float32(offset)
    if scale != 1.0:
        out *= np.float32(scale)
    return out


def _blocks(
    container: Any,
    stream: Any,
    info: AudioInfo,
    block_s: float,
    max_duration_s: float | None,
) -> Generator[npt.NDArray[np.float32], None, None]:
    import av

    rate = info.sample_rate_hz
    block_len = max(1, int(round(block_s * rate)))
    resampler: Any = None
    pending: list[npt.NDArray[np.float32]] = []
    pending_len = 0
    total = 0
    max_samples = None if max_duration_s is None else int((max_duration_s + 1.0) * rate)

    def chunks() -> Iterator[tuple[npt.NDArray[Any], str]]:
        """Decoded audio as ``(raw (2, n) array, native format name)``; "flt" when resampled."""
        nonlocal resampler
        try:
            for frame in container.decode(stream):
                raw = _native_chunk(frame, rate) if resampler is None else None
                if raw is not None:
                    yield raw, frame.format.name.rstrip("p")
                    continue
                if resampler is None:
                    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate)
                for out in resampler.resample(frame):
                    yield out.to_ndarray(), "flt"
            if resampler is not None:
                for out in resampler.resample(None):
                    yield out.to_ndarray(), "flt"
        except av.error.FFmpegError as exc:
            if total == 0:
                raise AudioUndecodable(
                    f"the audio data could not be decoded ({exc.__class__.__name__}); "
                    "the file looks damaged or is not audio"
                ) from None
            raise AudioTruncated(
                f"decoding stopped at {total / rate:.1f} s with a codec error: the file is "
                "damaged or cut short; re-export or re-upload the whole recording"
            ) from None

    def converted(raws: list[tuple[npt.NDArray[Any], str]]) -> npt.NDArray[np.float32]:
        """Raw chunks of one block as float32 ``(2, n)``, one conversion per run of a format."""
        parts: list[npt.NDArray[np.float32]] = []
        i = 0
        while i < len(raws):
            fmt = raws[i][1]
            j = i
            while j < len(raws) and raws[j][1] == fmt:
                j += 1
            run = [r for r, _ in raws[i:j]]
            joined = run[0] if len(run) == 1 else np.concatenate(run, axis=1)
            parts.append(_to_float32(joined, fmt))
            i = j
        block = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        return np.ascontiguousarray(block, dtype=np.float32)

    def checked(block: npt.NDArray[np.float32], start: int) -> npt.NDArray[np.float32]:
        peak = float(np.max(np.abs(block))) if block.size else 0.0  # NaN if any is NaN
        if not np.isfinite(peak):
            bad = start + int(np.flatnonzero(~np.isfinite(block).all(axis=0))[0])
            raise AudioNonFinite(
                f"the audio holds NaN or infinite samples near {bad / rate:.1f} s; "
                "export it again as PCM or a standard codec"
            )
        if peak > MAX_SAMPLE_MAGNITUDE:
            bad = start + int(np.flatnonzero((np.abs(block) > MAX_SAMPLE_MAGNITUDE).any(axis=0))[0])
            raise AudioNonFinite(
                f"the audio holds samples {peak:.3g} times full scale near {bad / rate:.1f} s "
                "(float audio lies within -1..1): it is not audio as recorded; export it "
                "again as PCM or a standard codec"
            )
        return block

    raws: list[tuple[npt.NDArray[Any], str]] = []
    emitted = 0
    try:
        for raw, fmt in chunks():
            total += raw.shape[1]
            if max_samples is not None and total > max_samples:
                raise AudioTooLong(
                    f"the recording is longer than the limit of {max_duration_s:.0f} s "
                    "(split the call, or raise the limit)"
                )
            raws.append((raw, fmt))
            pending_len += raw.shape[1]
            if pending_len < block_len:
                continue
            joined = converted(raws)
            raws = []
            while joined.shape[1] >= block_len:
                yield checked(joined[:, :block_len], emitted)
                emitted += block_len
                joined = joined[:, block_len:]
            pending = [joined] if joined.shape[1] else []
            raws = [(p, "flt") for p in pending]
            pending_len = joined.shape[1]
        if pending_len:
            yield checked(converted(raws), emitted)
    finally:
        container.close()
    duration = total / rate
    if total == 0:
        raise AudioEmpty("the file holds no audio samples; send a stereo call recording")
    declared = info.declared_duration_s
    if (
        info.duration_exact
        and declared is not None
        and duration < declared - TRUNCATION_TOLERANCE_S
    ):
        raise AudioTruncated(
            f"the file declares {declared:.1f} s of audio but ends at {duration:.1f} s: it "
            "was cut short; re-export or re-upload the whole recording"
        )
    if duration < MIN_DURATION_S:
        raise AudioTooShort(
            f"the recording lasts {duration:.2f} s; at least {MIN_DURATION_S} s is needed"
        )


def decode(
    source: Source,
    *,
    max_rate_hz: int = DEFAULT_MAX_RATE_HZ,
    max_duration_s: float | None = None,
) -> DecodedAudio:
    """Decode a whole recording to ``(2, n)`` float32 (for short calls, tests and tools).

    Long calls should use :func:`iter_blocks`; this holds one copy of the whole signal.
    """
    info, blocks = iter_blocks(
        source, block_s=60.0, max_rate_hz=max_rate_hz, max_duration_s=max_duration_s
    )
    parts = list(blocks)
    samples = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
    return DecodedAudio(samples=samples, info=info)
