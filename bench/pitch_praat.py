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


def praat_median(path: Path, channel: int, speech: np.ndarray, *, two_pass: bool) -> float:
    """Praat's median f0 on the speaker's speech frames.

    ``two_pass``: the usual per-speaker range (De Looze & Hirst): a first pass at 60-500 Hz,
    then floor 0.75 x q25 and ceiling 2.5 x q75 of that pass (Praat's own octave errors on
    telephone audio otherwise bias some speakers' medians).
    """
    fmin_hz, fmax_hz = 60.0, 500.0
    for _ in range(2 if two_pass else 1):
        times, f0 = praat_f0(path, channel, fmin_hz, fmax_hz)
        frames = np.clip(np.round(times / HOP_S).astype(int), 0, len(speech) - 1)
        on_speech = np.where(speech[frames], f0, np.nan)
        q25, q75 = np.nanpercentile(on_speech, [25, 75])
        fmin_hz, fmax_hz = max(40.0, 0.75 * q25), min(1000.0, 2.5 * q75)
    return float(np.nanmedian(on_speech))


def compare(path: Path) -> list[tuple[str, float, float, float]]:
    result = pipeline.analyze(path)
    rows = []
    for role, channel in (("agent", 0), ("customer", 1)):
        speaker = result.speakers[role]
        one = praat_median(path, channel, speaker.speech, two_pass=False)
        two = praat_median(path, channel, speaker.speech, two_pass=True)
        rows.append((f"{path.name} {role}", speaker.pitch["median_hz"], one, two))
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
        print("| call, speaker | mirrorline Hz | Praat 1-pass Hz | diff | Praat 2-pass Hz | diff |")
        print("|---|---|---|---|---|---|")
        worst = [0.0, 0.0]
        for call in calls:
            for name, ours, one, two in compare(call):
                diffs = [abs(ours / one - 1.0), abs(ours / two - 1.0)]
                worst = [max(w, d) for w, d in zip(worst, diffs, strict=True)]
                print(
                    f"| {name} | {ours:.1f} | {one:.1f} | {100 * diffs[0]:.1f}% "
                    f"| {two:.1f} | {100 * diffs[1]:.1f}% |"
                )
        print(
            f"\nworst difference (target <= 4%): vs Praat one pass {100 * worst[0]:.1f}%, "
            f"vs Praat two-pass speaker range {100 * worst[1]:.1f}%"
        )


if __name__ == "__main__":
    main()
