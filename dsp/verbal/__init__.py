"""Verbal mirroring: words recognised in each speaker's speech, echoes and echo questions,
and lexical mirroring against a local baseline. The recogniser is the optional ``verbal``
extra (:mod:`dsp.verbal.recognize`); everything else here is pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dsp.verbal.echoes import Echo, find_echoes, partner_turns
from dsp.verbal.lexical import LexicalMirroring, lexical_mirroring
from dsp.verbal.recognize import (
    INSTALL_COMMAND,
    FloatArray,
    RecognizerInfo,
    Word,
    recognizer_available,
    require_recognizer,
)
from dsp.verbal.turns import VerbalTurn, verbal_turns

#: Examples of echoes kept per speaker in the report.
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class SpeakerEchoes:
    """One speaker's echoes of the partner."""

    echoes: int
    echo_questions: int
    partner_turns: int
    examples: tuple[Echo, ...]

    @property
    def echoes_per_10_partner_turns(self) -> float:
        return 10.0 * self.echoes / self.partner_turns if self.partner_turns else float("nan")


@dataclass(frozen=True)
class VerbalResult:
    """Verbal mirroring of one call (role order: agent, customer)."""

    recognizer: RecognizerInfo
    words: tuple[int, int]
    speech_s: tuple[float, float]
    speakers: tuple[SpeakerEchoes, SpeakerEchoes]
    lexical: LexicalMirroring
    echoes: tuple[Echo, ...]
    turns: tuple[VerbalTurn, ...]  # both speakers', time order, with their words


def analyze_verbal(
    recognizer: RecognizerInfo,
    words: Sequence[Sequence[Word]],
    turns_s: Sequence[FloatArray],
    f0_hz: Sequence[FloatArray],
    speech_s: tuple[float, float],
) -> VerbalResult:
    """Echoes and lexical mirroring from each speaker's (role order) words, turns and f0."""
    turns = verbal_turns(turns_s, words)
    echoes = find_echoes(turns, f0_hz)
    speakers = tuple(
        SpeakerEchoes(
            echoes=sum(e.speaker == r for e in echoes),
            echo_questions=sum(e.speaker == r and e.question for e in echoes),
            partner_turns=partner_turns(turns, r),
            examples=tuple([e for e in echoes if e.speaker == r][:MAX_EXAMPLES]),
        )
        for r in (0, 1)
    )
    return VerbalResult(
        recognizer=recognizer,
        words=(len(words[0]), len(words[1])),
        speech_s=speech_s,
        speakers=(speakers[0], speakers[1]),
        lexical=lexical_mirroring(turns),
        echoes=tuple(echoes),
        turns=tuple(turns),
    )


__all__ = [
    "INSTALL_COMMAND",
    "Echo",
    "LexicalMirroring",
    "SpeakerEchoes",
    "VerbalResult",
    "VerbalTurn",
    "Word",
    "analyze_verbal",
    "recognizer_available",
    "require_recognizer",
    "verbal_turns",
]
