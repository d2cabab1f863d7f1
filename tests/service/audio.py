"""Small synthetic stereo calls for the service tests (numpy + soundfile, WAV bytes)."""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import soundfile as sf


def _voiced(
    t: npt.NDArray[np.float64], f0_hz: float, sample_rate_hz: int
) -> npt.NDArray[np.float64]:
    """A harmonic complex with a slow vibrato: crude but voiced-like."""
    f0 = f0_hz * (1.0 + 0.03 * np.sin(2 * np.pi * 3.0 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate_hz
    return np.sum([np.sin(k * phase) / k for k in range(1, 6)], axis=0)


def call_samples(
    duration_s: float = 8.0, *, sample_rate_hz: int = 8000, seed: int = 0
) -> npt.NDArray[np.float32]:
    """``(n, 2)`` float32: the two parties alternate turns of syllable-like bursts."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * sample_rate_hz)
    t = np.arange(n) / sample_rate_hz
    out = np.zeros((n, 2))
    carriers = (_voiced(t, 120.0, sample_rate_hz), _voiced(t, 210.0, sample_rate_hz))
    start = 0.2
    speaker = 0
    while start < duration_s - 0.5:
        turn_s = float(rng.uniform(1.0, 2.5))
        end = min(start + turn_s, duration_s - 0.1)
        mask = (t >= start) & (t < end)
        # 4-5 syllables per second of amplitude modulation
        envelope = np.clip(np.sin(2 * np.pi * 4.5 * (t[mask] - start)), 0, None) ** 2
        out[mask, speaker] = 0.3 * envelope * carriers[speaker][mask]
        start = end + float(rng.uniform(0.2, 0.8))
        speaker = 1 - speaker
    out += 1e-3 * rng.standard_normal(out.shape)
    return out.astype(np.float32)


def wav_bytes(
    samples: npt.NDArray[np.float32], sample_rate_hz: int = 8000, *, fmt: str = "WAV"
) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate_hz, format=fmt, subtype="PCM_16")
    return buffer.getvalue()


def long_flac(duration_s: float, *, seed: int = 1) -> bytes:
    """A long call as FLAC (several seconds of analysis): a 60 s call repeated."""
    piece = call_samples(60.0, seed=seed)
    repeats = int(np.ceil(duration_s / 60.0))
    return wav_bytes(np.tile(piece, (repeats, 1))[: int(duration_s * 8000)], 8000, fmt="FLAC")


def stereo_wav(duration_s: float = 8.0, *, sample_rate_hz: int = 8000, seed: int = 0) -> bytes:
    return wav_bytes(
        call_samples(duration_s, sample_rate_hz=sample_rate_hz, seed=seed), sample_rate_hz
    )


def mono_wav(duration_s: float = 4.0) -> bytes:
    return wav_bytes(call_samples(duration_s)[:, :1])


def three_channel_wav(duration_s: float = 4.0) -> bytes:
    samples = call_samples(duration_s)
    return wav_bytes(np.concatenate([samples, samples[:, :1]], axis=1))


def truncated_wav(duration_s: float = 8.0) -> bytes:
    """A WAV cut to 60 % of its bytes: its header promises more data than it holds."""
    data = stereo_wav(duration_s)
    return data[: int(len(data) * 0.6)]


def _syllables(
    duration_s: float, f0_hz: float, syllables_per_s: float, sr: int
) -> npt.NDArray[np.float64]:
    t = np.arange(int(duration_s * sr)) / sr
    envelope = np.sin(np.pi * syllables_per_s * t) ** 2
    return 0.3 * envelope * _voiced(t, f0_hz, sr)


def planted_call(
    turns: list[tuple[int, float, float, float]], total_s: float, *, sample_rate_hz: int = 8000
) -> npt.NDArray[np.int16]:
    """A (2, n) int16 call of voiced syllables: ``turns`` = (channel, start_s, duration_s,
    syllables_per_s); channel 0 at 120 Hz, channel 1 at 180 Hz, faint noise elsewhere."""
    sr = sample_rate_hz
    rng = np.random.default_rng(0)
    out = 1e-3 * rng.standard_normal((2, int(total_s * sr)))
    for channel, start, duration, rate in turns:
        piece = _syllables(duration, 120.0 if channel == 0 else 180.0, rate, sr)
        a = int(start * sr)
        out[channel, a : a + piece.size] += piece
    return np.round(np.clip(out, -1, 1) * 32767).astype(np.int16)


def alternating_turns(
    rates: tuple[float, float], total_s: float
) -> list[tuple[int, float, float, float]]:
    """3-s turns every 3.4 s, channel 0 first, at ``rates`` syllables per second."""
    turns = []
    start, channel = 0.5, 0
    while start < total_s - 4:
        turns.append((channel, start, 3.0, rates[channel]))
        start += 3.4
        channel = 1 - channel
    return turns
