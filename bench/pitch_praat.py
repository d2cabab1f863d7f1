"""Speaker pitch medians of `mirrorline` against Praat's on telephone-band mu-law calls.

For each call, both tools measure each channel's f0 on the same frames (that speaker's
speech as Mirrorline detects it) and the medians are compared. Calls: the bundled AMI
two-party sample (8 kHz mu-law) and stereo calls made from the corpus's single-speaker
recordings (one speaker per channel, band-limited 300-3400 Hz, mu-law 8 kHz, with bleed).
Praat (parselmouth, GPL) is a benchmark-only reference: ``pip install '.[bench]'``.

    python bench/pitch_praat.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
sys.path.insert(0, str(REPO))

from dsp import pipeline  # noqa: E402
from dsp.frames import HOP_S  # noqa: E402


def _mono(path: Path, rate_hz: int = 8000) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate_hz)
        parts = [
            out.to_ndarray()[0]
            for frame in container.decode(audio=0)
            for out in resampler.resample(frame)
        ]
    return np.concatenate(parts)


def telephone_call(a: Path, b: Path, folder: Path) -> Path:
    """Speaker a on the left, then b on the right, alternating halves, phone-line style."""
    from scipy.signal import butter, sosfiltfilt

    from tests.audiofiles import write_audio

    ya, yb = _mono(a), _mono(b)
    half_a, half_b = len(ya) // 2, len(yb) // 2
    gap = np.zeros(4000, dtype=np.float32)
    left = np.concatenate(
        [ya[:half_a], gap, np.zeros(half_b), gap, ya[half_a:], gap, np.zeros(len(yb) - half_b)]
    )
    right = np.concatenate(
        [np.zeros(half_a), gap, yb[:half_b], gap, np.zeros(len(ya) - half_a), gap, yb[half_b:]]
    )
    sos = butter(4, [300, 3400], btype="band", fs=8000, output="sos")
    left, right = sosfiltfilt(sos, left), sosfiltfilt(sos, right)
    stereo = np.stack([left + 0.05 * right, right + 0.05 * left]).astype(np.float32)
    stereo *= 0.5 / np.max(np.abs(stereo))
    path = folder / f"{a.stem}__{b.stem}.wav"
    write_audio(path, stereo, 8000, codec="pcm_mulaw")
    return path


def praat_f0(
    path: Path, channel: int, fmin_hz: float, fmax_hz: float
) -> tuple[np.ndarray, np.ndarray]:
    import parselmouth

    sound = parselmouth.Sound(str(path))
    mono = sound.extract_left_channel() if channel == 0 else sound.extract_right_channel()
    track = mono.to_pitch_ac(time_step=HOP_S, pitch_floor=fmin_hz, pitch_ceiling=fmax_hz)
    f0 = track.selected_array["frequency"]
    return track.xs(), np.where(f0 > 0, f0, np.nan)


def compare(path: Path) -> list[tuple[str, float, float]]:
    result = pipeline.analyze(path)
    rows = []
    for role, channel in (("agent", 0), ("customer", 1)):
        speaker = result.speakers[role]
        ours = speaker.pitch["median_hz"]
        times, f0 = praat_f0(path, channel, 60.0, 500.0)
        frames = np.clip(np.round(times / HOP_S).astype(int), 0, len(speaker.speech) - 1)
        praat = float(np.nanmedian(np.where(speaker.speech[frames], f0, np.nan)))
        rows.append((f"{path.name} {role}", ours, praat))
    return rows


def main() -> None:
    try:
        import parselmouth  # noqa: F401
    except ImportError:
        sys.exit("needs praat-parselmouth: pip install '.[bench]'")
    calls = [REPO / "samples" / "ami_two_party_8k_ulaw.wav"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pairs = [
            (
                "ms-katiesteve/enrollment_audio_katie.wav",
                "ms-katiesteve/enrollment_audio_steve.wav",
            ),
            ("ptdb-tug/mic_M01_sa1.wav", "ptdb-tug/mic_F01_sa1.wav"),
            ("ljspeech/wavs/LJ001-0001.wav", "jfk/jfk.flac"),
        ]
        for a, b in pairs:
            if (CORPUS / a).exists() and (CORPUS / b).exists():
                calls.append(telephone_call(CORPUS / a, CORPUS / b, folder))
        print("| call, speaker | mirrorline median Hz | Praat median Hz | difference |")
        print("|---|---|---|---|")
        worst = 0.0
        for call in calls:
            for name, ours, praat in compare(call):
                diff = abs(ours / praat - 1.0)
                worst = max(worst, diff)
                print(f"| {name} | {ours:.1f} | {praat:.1f} | {100 * diff:.1f}% |")
        print(f"\nworst difference: {100 * worst:.1f}% (target <= 4%)")


if __name__ == "__main__":
    main()
