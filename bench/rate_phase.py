"""How far does the syllable count move when nothing about the speech changes?

Run from the repository root:  python bench/rate_phase.py

The recordings of bench/rate_tempo.py (same 30 recording x band pairs) are measured by the
pipeline (:func:`rate_common.pipeline_speaker`) as they are and again delayed by 2.5, 5 and
7.5 ms of leading digital silence: the same speech, at the same tempo, only its phase
against the 10 ms frame clock moves. Printed per recording and band: the syllables at 0 ms
and at each delay and the articulation rate's ratio to the 0 ms one; then how many of the
90 ratios are within 5 % (the tolerance bench/rate_tempo.py asks of a tempo change) and the
worst. This is the count's noise floor: a tempo change moves the frame phase of every
syllable too, so a cell of bench/rate_tempo.py cannot be expected to hold tighter than a
delay does.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rate_common import pipeline_speaker, require_corpus, sox_load  # noqa: E402
from rate_tempo import TOLERANCE, recordings  # noqa: E402

DELAYS_MS = (2.5, 5.0, 7.5)


def main() -> None:
    corpus = require_corpus()
    syllables_off: list[float] = []
    articulation_off: list[float] = []
    print(
        "syllables at 0 ms > at the delay, and articulation rate at the delay / at 0 ms "
        f"(! = off by more than {TOLERANCE:.0%})\n"
    )
    print(f"{'recording':14s} {'band':6s} " + " ".join(f"{d:>15.1f} ms" for d in DELAYS_MS))
    with tempfile.TemporaryDirectory() as tmp:
        for name, files in recordings(corpus, short_only=False).items():
            joined = Path(tmp) / "joined.wav"
            cmd = ["sox", "-D", *map(str, files), "-r", "16000", "-c", "1", "-b", "16", str(joined)]
            subprocess.run(cmd, check=True, capture_output=True)
            for telephone in (False, True):
                y, sr = sox_load(joined, telephone=telephone)
                base = pipeline_speaker(y, sr).rate
                cells = []
                for delay_ms in DELAYS_MS:
                    silence = np.zeros(int(round(sr * delay_ms / 1000.0)), dtype=np.float32)
                    r = pipeline_speaker(np.concatenate([silence, y]), sr).rate
                    n_ratio = r.syllables / base.syllables
                    art_ratio = r.articulation_rate_syl_per_s / base.articulation_rate_syl_per_s
                    syllables_off.append(abs(n_ratio - 1.0))
                    articulation_off.append(abs(art_ratio - 1.0))
                    flag = " " if abs(art_ratio - 1.0) <= TOLERANCE else "!"
                    cells.append(f"{base.syllables:3d}>{r.syllables:<3d} {art_ratio:6.3f}{flag}")
                band = "8k tel" if telephone else "16k"
                print(f"{name:14s} {band:6s} " + "  ".join(cells))
    print()
    for key, offs in (("syllables", syllables_off), ("articulation", articulation_off)):
        arr = np.array(offs)
        print(
            f"{key:12s}: {int(np.sum(arr <= TOLERANCE))}/{arr.size} ratios within "
            f"{TOLERANCE:.0%} of 1 under a delay alone; worst |ratio - 1| = {arr.max():.3f}"
        )


if __name__ == "__main__":
    main()
