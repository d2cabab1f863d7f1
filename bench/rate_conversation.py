"""Syllable counts on spontaneous conversation against the speakers' own transcripts.

Run from the repository root:  python bench/rate_conversation.py

The AMI excerpt in ../shared/corpus/ami-seriously (60 s of a four-person design meeting,
one headset channel per speaker, word transcripts per speaker; source -> speaker mapping in
../shared/corpus/SOURCES.md) is measured as a two-party call per speaker: that speaker's
headset channel is one side, the other three headsets summed are the other side (so the
pipeline's bleed handling sees the crosstalk it would see on a call). Wideband 16 kHz and
8 kHz mu-law 300-3400 Hz (sox), as in bench/rate_ljspeech.py.

Printed per speaker and band: the transcript's dictionary syllables (CMU dictionary via
``pronouncing``; interjections such as "mm", "hmm" count one syllable each), the nuclei
the report counts (``speakers.agent.rate.syllables``), their ratio, the speaker's
reference talk time (``mixture.rttm``) and detected speech time, nuclei outside the
speaker's reference turns (crosstalk, or FEE013's unannotated start), and where the count
is lost: the nuclei found again with the voicing gate off, with the level thresholds off,
and with both off (same speech frames, same peak picking). Scored: speakers with >= 15 s
of reference talk time (MEO015 has 19.9 s; MEE014, 1.2 s and two transcript syllables,
is printed, not scored). Target: within 10 %.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rate_common import (  # noqa: E402
    pipeline_speaker_of_call,
    require_corpus,
    sox_load,
    text_syllables,
)

from dsp.rate import sonority_db, syllable_intensity_db, syllable_nuclei  # noqa: E402

# headset channel -> (AMI speaker, transcript letter), from SOURCES.md
SPEAKERS = {
    "source0": ("MEO015", "A"),
    "source1": ("FEE013", "B"),
    "source2": ("MEE014", "C"),
    "source3": ("FEE016", "D"),
}
MIN_TALK_S = 15.0
TOLERANCE = 0.10


def rttm_turns(path: Path, speaker: str) -> np.ndarray:
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[7] == speaker:
            start, dur = float(parts[3]), float(parts[4])
            rows.append([start, start + dur])
    return np.array(rows, dtype=np.float64).reshape(-1, 2)


def main() -> None:
    corpus = require_corpus() / "ami-seriously"
    worst = 0.0
    for telephone in (False, True):
        channels = {
            name: sox_load(corpus / "sources" / f"{name}.wav", telephone=telephone)
            for name in SPEAKERS
        }
        sr = next(iter(channels.values()))[1]
        label = "8 kHz mu-law 300-3400 Hz" if telephone else "16 kHz wideband"
        print(f"\n== {label}")
        print(
            f"{'speaker':8s} {'dict':>5s} {'found':>5s} {'ratio':>6s} {'talk_s':>6s} "
            f"{'speech_s':>8s} {'outside':>7s}   found again with gates off: "
            "voicing, level, sonority, all"
        )
        total_true = total_found = 0
        for name, (speaker, letter) in SPEAKERS.items():
            y = channels[name][0]
            others = sum(channels[o][0] for o in SPEAKERS if o != name)
            analysed = pipeline_speaker_of_call(y, np.asarray(others, dtype=np.float32), sr)
            n_true = text_syllables(
                (corpus / "text" / f"mixture.{letter}.words_joined.txt").read_text()
            )
            n_found = analysed.rate.syllables
            turns = rttm_turns(corpus / "mixture.rttm", speaker)
            talk_s = float(np.sum(turns[:, 1] - turns[:, 0]))
            t = analysed.nuclei_s
            inside = np.zeros(t.shape, dtype=bool)
            for start, end in turns:
                inside |= (t >= start - 0.1) & (t < end + 0.1)
            # the same detector on the same speech frames, one gate at a time switched off
            n_frames = analysed.speech.shape[0]
            level = syllable_intensity_db(y, sr)[:n_frames]
            sonority = sonority_db(y, sr)[:n_frames]
            voiced = np.isfinite(analysed.f0_hz)
            no_level = {"threshold_re_median_db": -99.0, "silence_re_peak_db": -99.0}
            off = {
                "voicing": dict(voiced=None, sonority=sonority),
                "level": dict(voiced=voiced, sonority=sonority, **no_level),
                "sonority": dict(voiced=voiced, sonority=None),
                "all": dict(voiced=None, sonority=None, **no_level),
            }
            again = [
                syllable_nuclei(level, speech=analysed.speech, **kw).size  # type: ignore[arg-type]
                for kw in off.values()
            ]
            ratio = n_found / n_true if n_true else float("nan")
            scored = talk_s >= MIN_TALK_S
            flag = ""
            if scored:
                worst = max(worst, abs(ratio - 1.0))
                total_true += n_true
                total_found += n_found
                flag = "" if abs(ratio - 1.0) <= TOLERANCE else "  !"
            print(
                f"{speaker:8s} {n_true:5d} {n_found:5d} {ratio:6.2f} {talk_s:6.1f} "
                f"{analysed.rate.phonation_time_s:8.1f} {int((~inside).sum()):7d}   "
                + ", ".join(f"{n:3d}" for n in again)
                + ("" if scored else "   (not scored)")
                + flag
            )
        print(
            f"scored speakers (>= {MIN_TALK_S:.0f} s of reference talk): {total_found} / "
            f"{total_true} = {total_found / total_true:.3f}"
        )
    print(f"worst |found/dict - 1| over scored speakers = {worst:.3f} (target <= {TOLERANCE})")


if __name__ == "__main__":
    main()
