"""Echoes (other-repetitions): a turn that repeats content words from the end of the
partner's turn just before it; an echo question when that turn is short and ends rising in
pitch (Couper-Kuhlen; Glasbergen-Plas et al. 2020)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dsp.frames import HOP_S
from dsp.verbal.content import content_words
from dsp.verbal.recognize import FloatArray
from dsp.verbal.turns import VerbalTurn

#: The end of the partner's turn an echo repeats from, s.
SOURCE_S = 4.0
#: How far into the answering turn the repetition may start, s.
REACH_S = 4.0
#: An echo question is at most this long, s.
QUESTION_MAX_S = 3.0
#: ... and its end climbs at least this far out of its final valley, semitones.
RISE_ST = 2.0
#: The final stretch whose pitch movement is measured, s.
FINAL_S = 0.8
MIN_VOICED_FRAMES = 6


@dataclass(frozen=True)
class Echo:
    """One echo: the answering turn, the partner turn it repeats, the repeated words."""

    speaker: int
    start_s: float
    end_s: float
    partner_start_s: float
    partner_end_s: float
    words: tuple[str, ...]
    question: bool
    rise_st: float  # pitch movement over the turn's end (NaN: too little voicing)


def final_rise_st(f0_hz: FloatArray, start_s: float, end_s: float) -> float:
    """How far the pitch climbs at the end of a span, semitones: the last voiced frames
    (their median) above the lowest point of the final ``FINAL_S`` (3-frame medians, so one
    stray frame is not a valley). A question's terminal rise climbs out of a valley; a
    statement ends at or near its lowest point. NaN when fewer than ``MIN_VOICED_FRAMES``
    frames are voiced."""
    lo = max(int(round(max(end_s - FINAL_S, start_s) / HOP_S)), 0)
    hi = min(int(round(end_s / HOP_S)) + 1, len(f0_hz))
    f0 = f0_hz[lo:hi]
    voiced = f0[np.isfinite(f0) & (f0 > 0)]
    if voiced.size < MIN_VOICED_FRAMES:
        return float("nan")
    st = 12.0 * np.log2(voiced)
    smooth = np.array([np.median(st[max(i - 1, 0) : i + 2]) for i in range(st.size)])
    k = max(st.size // 5, 2)
    return float(np.median(st[-k:]) - smooth.min())


def echo_words(turn: VerbalTurn, partner: VerbalTurn) -> tuple[str, ...]:
    """The content words near the start of ``turn`` that end ``partner``'s turn."""
    source = set(
        content_words(w.text for w in partner.words if w.end_s >= partner.end_s - SOURCE_S)
    )
    early = content_words(w.text for w in turn.words if w.start_s <= turn.start_s + REACH_S)
    seen: list[str] = []
    for w in early:
        if w in source and w not in seen:
            seen.append(w)
    return tuple(seen)


def find_echoes(turns: Sequence[VerbalTurn], f0_hz: Sequence[FloatArray]) -> list[Echo]:
    """Every turn (time order) that echoes the partner's turn just before it; ``f0_hz[r]``
    is speaker ``r``'s pitch track on the 10 ms clock (NaN unvoiced)."""
    out = []
    for prev, turn in zip(turns[:-1], turns[1:], strict=True):
        if prev.speaker == turn.speaker:
            continue
        words = echo_words(turn, prev)
        if not words:
            continue
        rise = final_rise_st(f0_hz[turn.speaker], turn.start_s, turn.end_s)
        short = turn.end_s - turn.start_s <= QUESTION_MAX_S
        out.append(
            Echo(
                speaker=turn.speaker,
                start_s=turn.start_s,
                end_s=turn.end_s,
                partner_start_s=prev.start_s,
                partner_end_s=prev.end_s,
                words=words,
                question=bool(short and np.isfinite(rise) and rise >= RISE_ST),
                rise_st=rise,
            )
        )
    return out


def partner_turns(turns: Sequence[VerbalTurn], speaker: int) -> int:
    """Turns of ``speaker``'s partner that ``speaker`` answered (an echo's chances)."""
    return sum(
        1
        for prev, turn in zip(turns[:-1], turns[1:], strict=True)
        if turn.speaker == speaker and prev.speaker != speaker
    )
