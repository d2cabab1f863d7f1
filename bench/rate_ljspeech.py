"""Syllable counts of dsp.rate against transcripts, wideband 16 kHz and 8 kHz telephone band.

Run from the repository root:  python bench/rate_ljspeech.py

Reads ../shared/corpus (LJ Speech 6 files; PTDB-TUG F01/M01 "sa1"; JFK) and prints, per file,
the transcript syllable count (CMU dictionary via ``pronouncing``, vowel-group fallback) and
the syllables the report counts (``speakers.agent.rate.syllables``: each file measured by
the pipeline as one side of a call, :func:`rate_common.pipeline_speaker`) and the
articulation rate, then the total ratio and Pearson r; finally the speed of the
frame-local intensity track on 60 minutes of 8 kHz audio.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rate_common import pipeline_speaker, require_corpus, sox_load, text_syllables  # noqa: E402

from dsp.rate import sonority_db, syllable_intensity_db, syllable_nuclei  # noqa: E402


def items(corpus: Path) -> list[tuple[str, Path, int]]:
    meta = {}
    for line in (corpus / "ljspeech" / "metadata.csv").read_text().splitlines():
        key, _raw, normalized = line.split("|")
        meta[key] = normalized
    out = []
    for wav in sorted((corpus / "ljspeech" / "wavs").glob("*.wav")):
        out.append((wav.stem, wav, text_syllables(meta[wav.stem])))
    sa1 = "She had your dark suit in greasy wash water all year."
    for spk in ("F01", "M01"):
        out.append(
            (f"ptdb {spk} sa1", corpus / "ptdb-tug" / f"mic_{spk}_sa1.wav", text_syllables(sa1))
        )
    jfk = (corpus / "jfk" / "transcript.txt").read_text()
    out.append(("jfk", corpus / "jfk" / "jfk.flac", text_syllables(jfk)))
    return out


def main() -> None:
    corpus = require_corpus()
    rows = items(corpus)
    for telephone in (False, True):
        label = "8 kHz mu-law 300-3400 Hz" if telephone else "16 kHz wideband"
        print(f"\n== {label}")
        print(f"{'file':16s} {'truth':>5s} {'found':>5s} {'ratio':>6s} {'art.rate':>8s}")
        truth, found = [], []
        for name, path, n_true in rows:
            y, sr = sox_load(path, telephone=telephone)
            measured = pipeline_speaker(y, sr).rate
            n = measured.syllables
            truth.append(n_true)
            found.append(n)
            print(
                f"{name:16s} {n_true:5d} {n:5d} {n / n_true:6.2f} "
                f"{measured.articulation_rate_syl_per_s:8.2f}"
            )
        t, f = np.array(truth), np.array(found)
        lj = slice(0, 6)
        print(
            f"LJ Speech: total {f[lj].sum()} / {t[lj].sum()} = {f[lj].sum() / t[lj].sum():.3f} "
            f"(target 0.90-1.10), Pearson r = {np.corrcoef(t[lj], f[lj])[0, 1]:.3f} "
            "(target >= 0.95)"
        )
        print(
            f"all {len(t)} files: total {f.sum() / t.sum():.3f}, "
            f"Pearson r = {np.corrcoef(t, f)[0, 1]:.3f}"
        )

    rng = np.random.default_rng(0)
    y = (0.05 * rng.standard_normal(60 * 60 * 8000)).astype(np.float32)
    times = []
    for _ in range(3):
        t0 = time.process_time()
        level = syllable_intensity_db(y, 8000)
        times.append(time.process_time() - t0)
    sonority_times = []
    for _ in range(3):
        t0 = time.process_time()
        sonority = sonority_db(y, 8000)
        sonority_times.append(time.process_time() - t0)
    t1 = time.process_time()
    syllable_nuclei(level, voiced=np.ones(level.size, bool), sonority=sonority)
    t2 = time.process_time()
    print(
        "\nspeed on 60 min of 8 kHz audio (CPU, best of 3): "
        f"syllable_intensity_db {min(times):.2f} s (first run {times[0]:.2f} s), "
        f"sonority_db {min(sonority_times):.2f} s; "
        f"syllable_nuclei on its {level.size} frames: {t2 - t1:.2f} s"
    )


if __name__ == "__main__":
    main()
