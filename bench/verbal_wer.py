"""Word error rate of the verbal recogniser on real conversational speech: the AMI two-party
excerpt (a 42.5-s stereo call, one headset per channel; corpus SOURCES.md), at 16 kHz and as
8 kHz mu-law telephone audio, decoded as the analysis decodes it (only inside each
channel's speech segments), and the decoding cost.

    python bench/verbal_wer.py [--corpus ../shared/corpus]

Needs the verbal extra (pip install 'mirrorline[verbal]').
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dsp import pipeline  # noqa: E402
from dsp.verbal.recognize import recognize_channels, recognizer_info  # noqa: E402

STEM = "ami-seriously/derived/stereo_L-FEE016_R-FEE013_2.0-44.5s"
# channel -> transcript (corpus SOURCES.md: left = text D, right = text B; text B's first
# words fall before the excerpt and are dropped here)
TEXTS = (
    "ami-seriously/text/mixture.D.words_joined.txt",
    "ami-seriously/text/mixture.B.words_joined.txt",
)
B_CUT = "button or something like that"


def normalise(text: str) -> list[str]:
    """Lower case, acronyms' letters apart (L_C_D_ -> l c d), hyphens and punctuation out."""
    text = re.sub(r"\b((?:[A-Za-z]_)+)", lambda m: " ".join(m.group(1).split("_")), text)
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^a-z' ]+", " ", text)
    return [w.strip("'") for w in text.split() if w.strip("'")]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpus"
    )
    args = ap.parse_args(argv)
    refs = []
    for i, rel in enumerate(TEXTS):
        text = (args.corpus / rel).read_text()
        if i == 1:
            text = text.replace(B_CUT, "", 1)
        refs.append(normalise(text))
    info = recognizer_info()
    print(f"recogniser: {info.engine} {info.version}, {info.acoustic_model}, {info.language_model}")
    for suffix, label in ((".wav", "16 kHz"), ("_8k_ulaw.wav", "8 kHz mu-law")):
        path = args.corpus / (STEM + suffix)
        result = pipeline.analyze(path, mirror=False)
        spans = [result.speakers[role].segments_s for role in pipeline.ROLES]  # agent = ch 0
        speech_s = sum(float((s[:, 1] - s[:, 0]).sum()) for s in spans)
        t0, c0 = time.perf_counter(), time.process_time()
        words = recognize_channels(path, spans, duration_s=result.duration_s)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        errors = total = 0
        for c in (0, 1):
            hyp = normalise(" ".join(w.text for w in words[c]))
            e = edit_distance(refs[c], hyp)
            errors += e
            total += len(refs[c])
            print(f"  {label} channel {c}: WER {e / len(refs[c]):.2f} ({e}/{len(refs[c])})")
            print(f"    hyp: {' '.join(hyp)}")
        print(
            f"{label}: WER {errors / total:.3f} ({errors}/{total} words); decoding "
            f"{speech_s:.1f} s of speech (of {2 * result.duration_s:.1f} s of channel audio) "
            f"took {cpu:.1f} s CPU, {wall:.1f} s wall: {cpu / speech_s:.2f} CPU s per s of speech"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
