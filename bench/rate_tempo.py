"""Do the measured speaking and articulation rates follow a planted tempo change?

Run from the repository root:  python bench/rate_tempo.py [--short-only]

The same real speech is slowed to 0.8x and sped up to 1.25x with ``sox tempo -s`` (WSOLA,
pitch kept) and measured by the product itself (:func:`rate_common.pipeline_speaker`: the
pipeline's voice activity, IPUs, turns, pitch, nuclei and dsp.measures, over the speaker's
speaking spans). Prints, per recording and band (16 kHz wideband, 8 kHz mu-law telephone
band), the rates at 1x and measured / true ratio of each rate at 0.8x and 1.25x (target:
within 5 %): read speech (the six LJ Speech files joined, and each alone: 1.9-9.7 s clips;
PTDB-TUG F01 and M01, 8 s), a speech (JFK, 11 s), the two Microsoft enrollment speakers
(18-20 s), and the AMI headset channels (60 s of a meeting, spontaneous).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rate_common import pipeline_speaker, require_corpus, sox_load  # noqa: E402

from dsp.measures import Rates  # noqa: E402

FACTORS = (0.8, 1.25)
TOLERANCE = 0.05


def measure(path: Path, *, telephone: bool, factor: float) -> Rates:
    effects = ("tempo", "-s", str(factor)) if factor != 1.0 else ()
    y, sr = sox_load(path, telephone=telephone, effects=effects)
    return pipeline_speaker(y, sr).rate


def recordings(corpus: Path, short_only: bool) -> dict[str, list[Path]]:
    lj = sorted((corpus / "ljspeech" / "wavs").glob("*.wav"))
    out: dict[str, list[Path]] = {}
    if not short_only:
        out["LJ Speech x6"] = lj
    out.update({f"LJ {p.stem[2:]}": [p] for p in lj})
    out["PTDB F01 sa1"] = [corpus / "ptdb-tug" / "mic_F01_sa1.wav"]
    out["PTDB M01 sa1"] = [corpus / "ptdb-tug" / "mic_M01_sa1.wav"]
    out["JFK"] = [corpus / "jfk" / "jfk.flac"]
    if not short_only:
        out["Katie"] = [corpus / "ms-katiesteve" / "enrollment_audio_katie.wav"]
        out["Steve"] = [corpus / "ms-katiesteve" / "enrollment_audio_steve.wav"]
        for source, speaker in (
            ("source0", "MEO015"),
            ("source1", "FEE013"),
            ("source3", "FEE016"),
        ):
            out[f"AMI {speaker}"] = [corpus / "ami-seriously" / "sources" / f"{source}.wav"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short-only", action="store_true", help="only the clips of <= 11 s")
    args = parser.parse_args()
    corpus = require_corpus()
    keys = ("articulation", "speaking", "syllables", "phonation")
    worst = dict.fromkeys(keys, 0.0)
    within = dict.fromkeys(keys, 0)
    n_cells = 0
    with tempfile.TemporaryDirectory() as tmp:
        print(
            "measured / true ratio of each rate at the tempo factor (1.000 = follows it exactly;"
            f" ! = off by more than {TOLERANCE:.0%}),\nand its two parts: syllables found "
            "(n_f / n_1) and phonation time (phon_f * f / phon_1)\n"
        )
        print(
            f"{'recording':14s} {'band':6s} {'dur_s':>5s} {'spk@1':>5s} {'art@1':>5s} "
            f"{'factor':>6s} {'syl':>7s} {'artic':>7s} {'speak':>7s} {'n_f/n_1':>7s} "
            f"{'phon':>7s}"
        )
        for name, files in recordings(corpus, args.short_only).items():
            joined = Path(tmp) / "joined.wav"
            cmd = ["sox", "-D", *map(str, files), "-r", "16000", "-c", "1", "-b", "16", str(joined)]
            subprocess.run(cmd, check=True, capture_output=True)
            duration_s = float(
                subprocess.run(
                    ["soxi", "-D", str(joined)], check=True, capture_output=True, text=True
                ).stdout
            )
            for telephone in (False, True):
                base = measure(joined, telephone=telephone, factor=1.0)
                band = "8k tel" if telephone else "16k"
                for factor in FACTORS:
                    r = measure(joined, telephone=telephone, factor=factor)
                    n_cells += 1
                    ratios = {
                        "articulation": r.articulation_rate_syl_per_s
                        / base.articulation_rate_syl_per_s
                        / factor,
                        "speaking": r.speaking_rate_syl_per_s
                        / base.speaking_rate_syl_per_s
                        / factor,
                        "syllables": r.syllables / base.syllables,
                        "phonation": r.phonation_time_s * factor / base.phonation_time_s,
                    }
                    cells = []
                    for key, ratio in ratios.items():
                        off = abs(ratio - 1.0) if np.isfinite(ratio) else np.inf
                        worst[key] = max(worst[key], off)
                        within[key] += off <= TOLERANCE
                        cells.append(f"{ratio:6.3f}{' ' if off <= TOLERANCE else '!'}")
                    print(
                        f"{name:14s} {band:6s} {duration_s:5.1f} "
                        f"{base.speaking_rate_syl_per_s:5.2f} "
                        f"{base.articulation_rate_syl_per_s:5.2f} {factor:5.2f}x "
                        f"{base.syllables:3d}>{r.syllables:<3d} " + " ".join(cells)
                    )
    print()
    for key in keys:
        print(
            f"{key:12s}: {within[key]}/{n_cells} ratios within {TOLERANCE:.0%} of the tempo "
            f"factor; worst |measured/true - 1| = {worst[key]:.3f}"
        )


if __name__ == "__main__":
    main()
