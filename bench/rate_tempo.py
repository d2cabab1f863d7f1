"""Does the measured articulation rate follow a planted tempo change?

Run from the repository root:  python bench/rate_tempo.py

The same real speech is slowed to 0.8x and sped up to 1.25x with ``sox tempo -s`` (WSOLA,
pitch kept) and the articulation rate (nuclei in IPUs / IPU time) is measured on each.
Prints measured ratio / true ratio (target 0.92-1.08) for the six LJ Speech files
concatenated, JFK, and the two Microsoft enrollment speakers (Katie, Steve), wideband
16 kHz and 8 kHz mu-law telephone band. Voicing and IPUs come from the stand-ins in
bench/rate_common.py.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rate_common import require_corpus, sox_load, speech_ipus, voiced_mask  # noqa: E402

from dsp.rate import rate_stats, syllable_intensity_db, syllable_nuclei  # noqa: E402

FACTORS = (0.8, 1.25)


def articulation_rate(path: Path, *, telephone: bool, factor: float) -> tuple[float, int]:
    effects = ("tempo", "-s", str(factor)) if factor != 1.0 else ()
    y, sr = sox_load(path, telephone=telephone, effects=effects)
    speech, ipus = speech_ipus(y, sr)
    nuclei = syllable_nuclei(syllable_intensity_db(y, sr), voiced=voiced_mask(y, sr), speech=speech)
    stats = rate_stats(nuclei, ipus_s=ipus)
    return stats.articulation_rate_syl_per_s, stats.syllables_in_ipus


def main() -> None:
    corpus = require_corpus()
    speakers = {
        "LJ Speech x6": sorted((corpus / "ljspeech" / "wavs").glob("*.wav")),
        "JFK": [corpus / "jfk" / "jfk.flac"],
        "Katie": [corpus / "ms-katiesteve" / "enrollment_audio_katie.wav"],
        "Steve": [corpus / "ms-katiesteve" / "enrollment_audio_steve.wav"],
    }
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'speaker':14s} {'band':9s} {'syl@1x':>6s} {'rate@1x':>7s}  measured/true ratio")
        for name, files in speakers.items():
            joined = Path(tmp) / "joined.wav"
            cmd = ["sox", *map(str, files), "-r", "16000", "-c", "1", str(joined)]
            subprocess.run(cmd, check=True, capture_output=True)
            for telephone in (False, True):
                base, n_base = articulation_rate(joined, telephone=telephone, factor=1.0)
                cells = []
                for factor in FACTORS:
                    rate, _ = articulation_rate(joined, telephone=telephone, factor=factor)
                    rel = rate / base / factor
                    worst = max(worst, abs(rel - 1.0))
                    flag = "" if 0.92 <= rel <= 1.08 else " FAIL"
                    cells.append(f"{factor:4.2f}x: {rel:.3f}{flag}")
                band = "8k tel" if telephone else "16k"
                print(f"{name:14s} {band:9s} {n_base:6d} {base:7.2f}  " + "   ".join(cells))
    print(f"worst |measured/true - 1| = {worst:.3f} (target <= 0.08)")


if __name__ == "__main__":
    main()
