"""Malformed recordings for the hardening tests, made here from real encoded audio.

Every function returns bytes (or writes a file) built from a real recording
(``tests.service.audio`` / ``tests.audiofiles``) and then damaged the way files arrive
damaged: lying headers, bytes cut off, foreign tags.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt

# Offsets inside the canonical 44-byte RIFF/WAVE header (fmt chunk first, 16 bytes).
WAV_FORMAT_TAG = 20
WAV_CHANNELS = 22
WAV_BITS_PER_SAMPLE = 34

#: name -> (offset, struct format, value): header fields FFmpeg has no decoder for.
DAMAGED_WAV_HEADERS: dict[str, tuple[int, str, int]] = {
    "format_tag_0x1234": (WAV_FORMAT_TAG, "<H", 0x1234),
    "format_tag_0": (WAV_FORMAT_TAG, "<H", 0),
    "format_tag_0xfffe_without_extension": (WAV_FORMAT_TAG, "<H", 0xFFFE),
    "bits_per_sample_0": (WAV_BITS_PER_SAMPLE, "<H", 0),
}


def patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    """``data`` with one little-endian header field overwritten."""
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def damaged_wav(wav: bytes, kind: str) -> bytes:
    """A canonical 16-bit WAV whose ``fmt`` chunk is damaged as ``DAMAGED_WAV_HEADERS[kind]``."""
    assert wav[12:16] == b"fmt " and wav[36:40] == b"data", "needs the canonical 44-byte header"
    return patched(wav, *DAMAGED_WAV_HEADERS[kind])


def mp3_with_latin1_title(
    path: Path, samples: npt.NDArray[np.float32], sample_rate_hz: int, title: str = "\xaf\xfe"
) -> Path:
    """An MP3 whose ID3 title holds bytes that are not UTF-8 (what ``ffmpeg -metadata
    title=$'\\xaf\\xfe'`` writes), encoded with PyAV: no system ffmpeg needed."""
    import av

    samples = np.ascontiguousarray(np.atleast_2d(samples), dtype=np.float32)
    with av.open(str(path), mode="w", format="mp3", metadata_encoding="latin-1") as out:
        out.metadata["title"] = title
        stream = out.add_stream("libmp3lame", rate=sample_rate_hz, layout="stereo")
        resampler = av.AudioResampler(
            format=stream.codec_context.codec.audio_formats[0].name,
            layout="stereo",
            rate=sample_rate_hz,
        )
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
        frame.sample_rate = sample_rate_hz
        for converted in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(converted):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    assert b"\xaf\xfe" in path.read_bytes()[:256], "the title must be stored as raw Latin-1"
    return path
