"""Both speakers' turns in time order, each with the words recognised inside it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dsp.verbal.content import content_words
from dsp.verbal.recognize import FloatArray, Word

#: A word belongs to a turn when its middle is within this of the turn's span, s (the
#: recogniser decodes a little padding around each segment).
EDGE_S = 0.25


@dataclass(frozen=True)
class VerbalTurn:
    """One turn of one speaker (0 agent, 1 customer) and its recognised words."""

    speaker: int
    start_s: float
    end_s: float
    words: tuple[Word, ...]

    def content(self) -> list[str]:
        return content_words(w.text for w in self.words)


def verbal_turns(
    turns_s: Sequence[FloatArray], words: Sequence[Sequence[Word]]
) -> list[VerbalTurn]:
    """Turns of both speakers (role order: ``turns_s[r]``, ``words[r]``) merged by start."""
    out: list[VerbalTurn] = []
    for r in (0, 1):
        spans = np.asarray(turns_s[r], dtype=np.float64).reshape(-1, 2)
        mids = np.array([(w.start_s + w.end_s) / 2.0 for w in words[r]])
        for a, b in spans:
            inside: list[int] = (
                np.flatnonzero((mids >= a - EDGE_S) & (mids <= b + EDGE_S)).tolist()
                if mids.size
                else []
            )
            out.append(
                VerbalTurn(
                    speaker=r,
                    start_s=float(a),
                    end_s=float(b),
                    words=tuple(words[r][i] for i in inside),
                )
            )
    out.sort(key=lambda t: (t.start_s, t.speaker))
    return out
