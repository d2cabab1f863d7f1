"""Seeded malformed recordings: >= 1,000 inputs that must never crash Mirrorline.

``cases(seed)`` builds real encoded calls (every container and codec Mirrorline reads, odd
channel counts and sample rates, NaN/Inf, silence) and damages them deterministically:
truncations, byte flips, zeroed or inserted blocks, garbage prepended or appended, and
lying headers (WAV sizes, channels, rates, block align, bits; FLAC STREAMINFO; MP3 Xing
frame counts). The same seed gives the same bytes on every machine.

Used by ``tests/service/test_fuzz.py`` (a bounded sample on every push) and ``bench/fuzz.py`` (all
of them: every answer must be a report or a clear 4xx / exit 2, never a 5xx, a traceback
or a hang).
"""

from __future__ import annotations

import io
import struct
import tempfile
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tests.audiofiles import FORMATS, write_format
from tests.service.audio import call_samples

DEFAULT_SEED = 20261205
#: mutations per base file: bases x this is the number of cases (>= 1,000 by default)
MUTATIONS_PER_BASE = 36


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    suffix: str


def _pcm_wav(samples: npt.NDArray[np.float32], rate: int, *, width: int = 2) -> bytes:
    """A plain PCM WAV of ``(channels, n)`` samples at any rate and channel count."""
    channels = samples.shape[0]
    scale = {1: 127, 2: 32767, 4: 2**31 - 1}[width]
    ints = np.clip(np.nan_to_num(samples.T), -1, 1) * scale
    if width == 1:
        raw = (ints + 128).astype(np.uint8).tobytes()
    else:
        raw = ints.astype({2: "<i2", 4: "<i4"}[width]).tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(raw)
    return buffer.getvalue()


def _float_wav(samples: npt.NDArray[np.float32], rate: int) -> bytes:
    """A 32-bit float WAV (format tag 3): the only PCM that can carry NaN and Inf."""
    channels, n = samples.shape
    data = np.ascontiguousarray(samples.T, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * channels * 4, channels * 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def base_files(duration_s: float = 1.5) -> dict[str, Case]:
    """Valid and borderline recordings to damage: every codec, odd layouts and rates."""
    call = np.ascontiguousarray(call_samples(duration_s, sample_rate_hz=16000).T)
    call8 = np.ascontiguousarray(call_samples(duration_s, sample_rate_hz=8000).T)
    out: dict[str, Case] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (suffix, *_rest) in FORMATS.items():
            path = write_format(Path(tmp) / name, name, call, 16000, bitexact=True)
            out[name] = Case(name, path.read_bytes(), suffix)
    out["wav_8k"] = Case("wav_8k", _pcm_wav(call8, 8000), ".wav")
    out["wav_u8_8k"] = Case("wav_u8_8k", _pcm_wav(call8, 8000, width=1), ".wav")
    out["mono"] = Case("mono", _pcm_wav(call8[:1], 8000), ".wav")
    for channels in (3, 6):
        layout = np.vstack([call8] * channels)[:channels]
        out[f"channels_{channels}"] = Case(f"channels_{channels}", _pcm_wav(layout, 8000), ".wav")
    for rate in (1000, 4000, 7999, 11025, 22050, 96000, 192000, 384000):
        n = int(duration_s * rate)
        resampled = np.ascontiguousarray(
            call8[:, np.linspace(0, call8.shape[1] - 1, n).astype(int)]
        )
        out[f"rate_{rate}"] = Case(f"rate_{rate}", _pcm_wav(resampled, rate), ".wav")
    for name, value in (("nan", np.nan), ("inf", np.inf), ("neg_inf", -np.inf)):
        bad = call8.copy()
        bad[1, bad.shape[1] // 2 :: 97] = value
        out[name] = Case(name, _float_wav(bad, 8000), ".wav")
    out["all_nan"] = Case("all_nan", _float_wav(np.full_like(call8, np.nan), 8000), ".wav")
    out["huge_float"] = Case("huge_float", _float_wav(call8 * 1e30, 8000), ".wav")
    out["silence"] = Case("silence", _pcm_wav(np.zeros_like(call8), 8000), ".wav")
    out["tiny"] = Case("tiny", _pcm_wav(call8[:, :400], 8000), ".wav")
    out["identical"] = Case("identical", _pcm_wav(np.vstack([call8[0], call8[0]]), 8000), ".wav")
    out["empty"] = Case("empty", b"", ".wav")
    out["text"] = Case("text", b"this is not a recording\n" * 64, ".wav")
    return out


Mutation = Callable[[bytes, np.random.Generator], bytes]


def _truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: int(len(data) * rng.uniform(0.0, 0.98))]


def _truncate_header(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: int(rng.integers(0, min(len(data), 256) + 1))]


def _flip_bytes(data: bytes, rng: np.random.Generator) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for at in rng.integers(0, len(out), size=int(rng.integers(1, 64))):
        out[at] ^= int(rng.integers(1, 256))
    return bytes(out)


def _flip_header(data: bytes, rng: np.random.Generator) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for at in rng.integers(0, min(len(out), 128), size=int(rng.integers(1, 6))):
        out[at] = int(rng.integers(0, 256))
    return bytes(out)


def _zero_block(data: bytes, rng: np.random.Generator) -> bytes:
    if len(data) < 2:
        return data
    start = int(rng.integers(0, len(data) - 1))
    end = min(len(data), start + int(rng.integers(1, 4096)))
    return data[:start] + bytes(end - start) + data[end:]


def _insert_garbage(data: bytes, rng: np.random.Generator) -> bytes:
    at = int(rng.integers(0, len(data) + 1))
    return data[:at] + rng.bytes(int(rng.integers(1, 2048))) + data[at:]


def _duplicate_block(data: bytes, rng: np.random.Generator) -> bytes:
    if len(data) < 2:
        return data
    start = int(rng.integers(0, len(data) - 1))
    block = data[start : start + int(rng.integers(1, 8192))]
    return data[:start] + block + data[start:]


def _prepend_garbage(data: bytes, rng: np.random.Generator) -> bytes:
    return rng.bytes(int(rng.integers(1, 512))) + data


def _append_garbage(data: bytes, rng: np.random.Generator) -> bytes:
    return data + rng.bytes(int(rng.integers(1, 65536)))


def _lying_wav_header(data: bytes, rng: np.random.Generator) -> bytes:
    """Overwrite one field of a RIFF/WAVE header with a plausible or absurd value."""
    if data[:4] != b"RIFF" or len(data) < 44:
        return _flip_header(data, rng)
    fields = [  # (offset, format)
        (4, "<I"),  # RIFF size
        (16, "<I"),  # fmt chunk size
        (20, "<H"),  # format tag
        (22, "<H"),  # channels
        (24, "<I"),  # sample rate
        (28, "<I"),  # byte rate
        (32, "<H"),  # block align
        (34, "<H"),  # bits per sample
        (40, "<I"),  # data size (canonical layout)
    ]
    offset, fmt = fields[int(rng.integers(0, len(fields)))]
    limit = 0xFFFF if fmt == "<H" else 0xFFFFFFFF
    choices = [0, 1, 2, 3, 7, 8, 24, 255, 0xFFFE, limit, int(rng.integers(0, limit + 1))]
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, min(choices[int(rng.integers(0, len(choices)))], limit))
    return bytes(out)


def _lying_flac_streaminfo(data: bytes, rng: np.random.Generator) -> bytes:
    """Change a FLAC STREAMINFO field: rate/channels/bits word or the total sample count."""
    if data[:4] != b"fLaC" or len(data) < 42:
        return _flip_header(data, rng)
    out = bytearray(data)
    at = 8 + 10  # metadata block header (4) after "fLaC", then 10 bytes of block sizes
    if rng.random() < 0.5:
        out[at : at + 8] = rng.bytes(8)  # rate (20 bits), channels-1, bits-1, total samples
    else:
        out[at + 4 : at + 8] = rng.bytes(4)  # low 32 bits of the total sample count
    return bytes(out)


def _lying_xing(data: bytes, rng: np.random.Generator) -> bytes:
    """Change the frame count of an MP3's Xing/Info frame (the duration it declares)."""
    for tag in (b"Xing", b"Info"):
        at = data.find(tag, 0, 8192)
        if at >= 0 and len(data) > at + 12:
            out = bytearray(data)
            out[at + 8 : at + 12] = rng.bytes(4)
            return bytes(out)
    return _flip_header(data, rng)


MUTATIONS: dict[str, Mutation] = {
    "truncate": _truncate,
    "truncate_header": _truncate_header,
    "flip_bytes": _flip_bytes,
    "flip_header": _flip_header,
    "zero_block": _zero_block,
    "insert_garbage": _insert_garbage,
    "duplicate_block": _duplicate_block,
    "prepend_garbage": _prepend_garbage,
    "append_garbage": _append_garbage,
    "lying_wav_header": _lying_wav_header,
    "lying_flac_streaminfo": _lying_flac_streaminfo,
    "lying_xing": _lying_xing,
}


def cases(seed: int = DEFAULT_SEED, per_base: int = MUTATIONS_PER_BASE) -> Iterator[Case]:
    """Every base unchanged, then ``per_base`` seeded mutations of each (mutations cycle
    through ``MUTATIONS`` so each kind hits each base)."""
    bases = base_files()
    kinds = list(MUTATIONS)
    for name, base in bases.items():
        yield base
        for i in range(per_base):
            rng = np.random.default_rng([seed, len(name), sum(name.encode()), i])
            kind = kinds[i % len(kinds)]
            data = MUTATIONS[kind](base.data, rng)
            if rng.random() < 0.15:  # sometimes two kinds of damage at once
                data = MUTATIONS[kinds[int(rng.integers(0, len(kinds)))]](data, rng)
            yield Case(f"{name}.{kind}.{i}", data, base.suffix)


def sample(all_cases: list[Case], n: int, seed: int = DEFAULT_SEED) -> list[Case]:
    """``n`` cases chosen with ``seed`` (the bounded set CI runs)."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(all_cases), size=min(n, len(all_cases)), replace=False)
    return [all_cases[i] for i in sorted(picked)]


# -- judging the answers ------------------------------------------------------------------

ERROR_LINE = r"^error: [a-z_]+(\.[a-z_]+)*: \S"


def cli_verdict(path: str) -> str | None:
    """Run ``mirrorline analyze PATH`` (its ``main``, in this process) and judge it: None
    when it is a report (exit 0) or a clean refusal (exit 2, one ``error: <code>: ...``
    line, nothing on stdout); otherwise what was wrong."""
    import contextlib
    import re

    from service.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["analyze", path, "--no-progress"])
    except BaseException as exc:  # anything escaping main is the finding
        return f"raised {exc.__class__.__name__}: {exc}"
    lines = err.getvalue().strip().splitlines()
    if code == 0:
        return None if not lines else f"exit 0 with stderr {err.getvalue()[-300:]!r}"
    if code != 2:
        return f"exit {code}: {err.getvalue()[-300:]!r}"
    if len(lines) != 1 or not re.match(ERROR_LINE, lines[0]) or out.getvalue():
        return f"exit 2 but stderr {err.getvalue()[-300:]!r}"
    return None


def http_verdict(response: object) -> str | None:
    """None for a report (200) or a problem+json 4xx with a ``code``; else what was wrong."""
    status = getattr(response, "status_code", 0)
    if status == 200:
        return None
    if not 400 <= status < 500:
        return f"HTTP {status}: {getattr(response, 'text', '')[:300]}"
    headers = getattr(response, "headers", {})
    if not str(headers.get("content-type", "")).startswith("application/problem+json"):
        return f"HTTP {status} without problem+json"
    try:
        code = response.json().get("code")  # type: ignore[attr-defined]
    except ValueError:
        return f"HTTP {status} with a body that is not JSON"
    return None if isinstance(code, str) and code else f"HTTP {status} without a code"
