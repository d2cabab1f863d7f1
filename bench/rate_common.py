"""Shared helpers for the dsp.rate benchmarks (not part of the package).

- loading mono reference recordings at 16 kHz or as 8 kHz mu-law telephone band (sox),
- :func:`pipeline_speaker`: one mono recording measured by the product itself (the
  pipeline's voice activity, IPUs, turns, pitch tracker, nuclei and dsp.measures), as the
  agent of a stereo call whose other channel is faint noise,
- a stand-in voicing detector (normalised autocorrelation, Boersma 1993 style) and a
  stand-in energy VAD with IPUs (the first benches, before dsp.pitch / dsp.activity),
- transcript syllable counts with the CMU dictionary (``pronouncing``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

from dsp.frames import frame_count, hop_samples, mask_to_segments
from dsp.pipeline import SpeakerAnalysis, analyze
from dsp.rate import syllable_intensity_db, syllable_nuclei

REPO = Path(__file__).resolve().parents[1]
CORPUS = (REPO / ".." / "shared" / "corpus").resolve()


def require_corpus() -> Path:
    if not CORPUS.is_dir():
        sys.exit(f"corpus not found at {CORPUS} (expected ../shared/corpus next to the repo)")
    if shutil.which("sox") is None:
        sys.exit("sox is needed for resampling / tempo changes; install sox")
    return CORPUS


def sox_load(
    path: Path, *, telephone: bool, effects: tuple[str, ...] = ()
) -> tuple[npt.NDArray[np.float32], int]:
    """Mono float32 audio: 16 kHz wideband, or 8 kHz mu-law 300-3400 Hz (telephone).

    Without dither (``sox -D``), so that a bench prints the same numbers on every run."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        if telephone:
            cmd = [
                "sox",
                "-D",
                str(path),
                "-r",
                "8000",
                "-c",
                "1",
                "-e",
                "u-law",
                "-b",
                "8",
                str(out),
            ]
            cmd += [*effects, "sinc", "300-3400"]
        else:
            cmd = ["sox", "-D", str(path), "-r", "16000", "-c", "1", "-b", "16", str(out), *effects]
        subprocess.run(cmd, check=True, capture_output=True)
        y, sr = sf.read(out, dtype="float32", always_2d=False)
    return np.asarray(y, dtype=np.float32), int(sr)


def pipeline_speaker(y: npt.NDArray[np.float32], sr: int) -> SpeakerAnalysis:
    """``y`` measured as the agent of a stereo call by :func:`dsp.pipeline.analyze` (the
    customer channel is noise 80 dB below full scale)."""
    noise = 1e-4 * np.random.default_rng(0).standard_normal(y.shape[0])
    return pipeline_speaker_of_call(y, noise.astype(np.float32), sr)


def pipeline_speaker_of_call(
    y: npt.NDArray[np.float32], partner: npt.NDArray[np.float32], sr: int
) -> SpeakerAnalysis:
    """``y`` measured as the agent of the stereo call (``y``, ``partner``)."""
    stereo = np.clip(np.stack([y, partner], axis=1), -1.0, 1.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "call.wav"
        sf.write(path, stereo, sr, subtype="PCM_16")
        result = analyze(path, mirror=False)
    return result.speakers["agent"]


def voiced_mask(
    y: npt.NDArray[np.float32], sr: int, *, threshold: float = 0.45
) -> npt.NDArray[np.bool_]:
    """Per-frame voicing on the 10 ms clock: normalised autocorrelation peak at 60-400 Hz."""
    hop = hop_samples(sr)
    n_frames = frame_count(len(y), sr)
    win = int(round(0.05 * sr))
    pad = np.pad(y.astype(np.float64), (win // 2, win))
    idx = np.arange(n_frames)[:, None] * hop + np.arange(win)[None, :]
    frames = pad[idx]
    frames = frames - frames.mean(axis=1, keepdims=True)
    w = np.hanning(win)
    nfft = 1 << int(np.ceil(np.log2(2 * win)))
    spec = np.fft.rfft(frames * w, nfft)
    ac = np.fft.irfft(np.abs(spec) ** 2, nfft)[:, :win]
    acw = np.fft.irfft(np.abs(np.fft.rfft(w, nfft)) ** 2, nfft)[:win]
    r = ac / np.maximum(ac[:, :1], 1e-20) / np.maximum(acw / acw[0], 1e-3)
    lo, hi = int(sr / 400), int(sr / 60)
    peak = r[:, lo:hi].max(axis=1)
    energy_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    loud = energy_db > np.quantile(energy_db, 0.95) - 35.0
    return (peak > threshold) & loud


def speech_ipus(
    y: npt.NDArray[np.float32],
    sr: int,
    *,
    min_pause_s: float = 0.2,
    min_ipu_s: float = 0.1,
    below_top_db: float = 30.0,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]:
    """Energy VAD (level above p95 - ``below_top_db``): speech mask and IPUs (k, 2) in s."""
    level = syllable_intensity_db(y, sr, band_hz=(100.0, 3400.0), smooth_s=0.03)
    mask = level > np.quantile(level, 0.95) - below_top_db
    segs = mask_to_segments(mask)
    merged: list[list[float]] = []
    for start, end in segs:
        if merged and start - merged[-1][1] < min_pause_s:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    ipus = np.array([s for s in merged if s[1] - s[0] >= min_ipu_s], dtype=np.float64)
    ipus = ipus.reshape(-1, 2)
    speech = np.zeros_like(mask)
    for start, end in ipus:
        speech[int(round(start / 0.01)) : int(round(end / 0.01))] = True
    return speech, ipus


def count_nuclei(y: npt.NDArray[np.float32], sr: int) -> tuple[int, npt.NDArray[np.int64], float]:
    """Nuclei count, frames and phonation time (s) with the stand-in voicing and VAD."""
    speech, ipus = speech_ipus(y, sr)
    voiced = voiced_mask(y, sr)
    level = syllable_intensity_db(y, sr)
    nuclei = syllable_nuclei(level, voiced=voiced, speech=speech)
    phonation = float(np.sum(ipus[:, 1] - ipus[:, 0])) if len(ipus) else 0.0
    return int(nuclei.size), nuclei, phonation


_VOWEL_GROUP = re.compile(r"[aeiouy]+")


def word_syllables(word: str) -> int:
    import pronouncing

    w = word.lower().strip("'")
    if not w:
        return 0
    phones = pronouncing.phones_for_word(w)
    if phones:
        # interjections such as "mm" and "hmm" have no vowel in the dictionary but are
        # spoken as one syllabic nasal: one syllable
        return max(1, int(pronouncing.syllable_count(phones[0])))
    n = len(_VOWEL_GROUP.findall(w))
    if w.endswith("e") and not w.endswith(("le", "ee")) and n > 1:
        n -= 1
    return max(1, n)


def text_syllables(text: str) -> int:
    return sum(word_syllables(w) for w in re.findall(r"[A-Za-z']+", text))
