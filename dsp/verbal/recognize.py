"""Words with times from each channel's speech segments: CMU PocketSphinx with the US
English model its wheel ships (BSD licence), nothing downloaded at run time.

PocketSphinx is the optional ``verbal`` extra; without it :func:`require_recognizer`
raises :class:`dsp.errors.VerbalUnavailable` naming the install command. Only the speech
segments the pipeline found are decoded (each padded a little so the decoder sees the
word edges), one at a time while the call is decoded again in blocks: memory stays that
of one segment.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from dsp.errors import VerbalUnavailable
from dsp.io import Source, iter_blocks

FloatArray = npt.NDArray[np.float64]

INSTALL_COMMAND = "pip install 'mirrorline[verbal]'"
#: The acoustic model's rate: 8 kHz calls are upsampled to it (nothing above 4 kHz).
RECOGNIZER_RATE_HZ = 16000
#: Audio added on each side of a speech segment, s (the detector trims weak word edges).
PAD_S = 0.2
#: PocketSphinx frames are 10 ms.
_FRAME_S = 0.01


@dataclass(frozen=True)
class Word:
    """One recognised word on the call's clock."""

    text: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class RecognizerInfo:
    """Which recogniser and models ran (the report names them)."""

    engine: str
    version: str
    language: str
    acoustic_model: str
    language_model: str
    dictionary: str


def require_recognizer() -> Any:
    """The ``pocketsphinx`` module, or :class:`VerbalUnavailable` naming the install."""
    try:
        import pocketsphinx
    except ImportError:
        raise VerbalUnavailable(
            "verbal mirroring needs a speech recogniser that is not installed; "
            f"install it with: {INSTALL_COMMAND}"
        ) from None
    return pocketsphinx


def recognizer_available() -> bool:
    try:
        require_recognizer()
    except VerbalUnavailable:
        return False
    return True


def recognizer_info() -> RecognizerInfo:
    from importlib.metadata import version

    require_recognizer()
    return RecognizerInfo(
        engine="pocketsphinx",
        version=version("pocketsphinx"),
        language="en-US",
        acoustic_model="en-us (CMU Sphinx US English, 16 kHz, PTM)",
        language_model="en-us.lm.bin (CMU Sphinx US English trigram)",
        dictionary="cmudict-en-us.dict",
    )


class Recognizer:
    """One PocketSphinx decoder, reused for every segment of a call."""

    def __init__(self) -> None:
        ps = require_recognizer()
        self._decoder = ps.Decoder(samprate=RECOGNIZER_RATE_HZ, loglevel="FATAL")

    def words(self, samples: npt.NDArray[np.float32], offset_s: float) -> list[Word]:
        """Words of one stretch of 16 kHz audio that starts ``offset_s`` into the call."""
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        d = self._decoder
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        out = []
        for seg in d.seg():
            text = _clean(seg.word)
            if text:
                out.append(
                    Word(
                        text=text,
                        start_s=round(offset_s + seg.start_frame * _FRAME_S, 2),
                        end_s=round(offset_s + (seg.end_frame + 1) * _FRAME_S, 2),
                    )
                )
        return out


def _clean(token: str) -> str:
    """A decoder token as a word: fillers (``<sil>``, ``[NOISE]``) dropped, the
    pronunciation variant mark (``word(2)``) removed."""
    if not token or token[0] in "<[":
        return ""
    return token.split("(", 1)[0].lower()


def padded_spans(spans_s: FloatArray, pad_s: float, duration_s: float) -> FloatArray:
    """``spans_s`` widened by ``pad_s`` each side, clipped to the call, overlaps merged."""
    spans = np.asarray(spans_s, dtype=np.float64).reshape(-1, 2)
    if spans.size == 0:
        return spans
    spans = spans[np.argsort(spans[:, 0])]
    lo = np.maximum(spans[:, 0] - pad_s, 0.0)
    hi = np.minimum(spans[:, 1] + pad_s, duration_s)
    merged: list[list[float]] = []
    for a, b in zip(lo, hi, strict=True):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], float(b))
        else:
            merged.append([float(a), float(b)])
    return np.asarray(merged, dtype=np.float64).reshape(-1, 2)


def segment_audio(
    blocks: Iterable[npt.NDArray[np.float32]],
    sample_rate_hz: int,
    spans_s: Sequence[FloatArray],
) -> Iterator[tuple[int, float, npt.NDArray[np.float32]]]:
    """(channel, start s, samples) of each span of each channel's ``spans_s`` (sorted,
    disjoint), cut from the streamed (2, n) ``blocks`` as soon as the span is complete."""
    bounds = [
        np.round(np.asarray(s, dtype=np.float64).reshape(-1, 2) * sample_rate_hz).astype(np.int64)
        for s in spans_s
    ]
    nxt = [0, 0]  # next span of each channel
    pieces: list[list[npt.NDArray[np.float32]]] = [[], []]
    at = 0
    for block in blocks:
        end = at + block.shape[1]
        for c in (0, 1):
            while nxt[c] < len(bounds[c]):
                a, b = bounds[c][nxt[c]]
                if a >= end:
                    break
                pieces[c].append(block[c, max(a - at, 0) : min(b, end) - at])
                if b > end:
                    break
                yield c, a / sample_rate_hz, np.concatenate(pieces[c])
                pieces[c] = []
                nxt[c] += 1
        at = end
    for c in (0, 1):  # spans running past the decoded end
        if nxt[c] < len(bounds[c]) and pieces[c]:
            yield c, bounds[c][nxt[c]][0] / sample_rate_hz, np.concatenate(pieces[c])


def to_recognizer_rate(samples: npt.NDArray[np.float32], sample_rate_hz: int) -> Any:
    if sample_rate_hz == RECOGNIZER_RATE_HZ:
        return samples
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(RECOGNIZER_RATE_HZ, sample_rate_hz)
    return resample_poly(samples, RECOGNIZER_RATE_HZ // g, sample_rate_hz // g).astype(np.float32)


def recognize_channels(
    source: Source,
    spans_s: Sequence[FloatArray],
    *,
    block_s: float = 60.0,
    pad_s: float = PAD_S,
    duration_s: float,
    max_duration_s: float | None = None,
) -> list[list[Word]]:
    """Each channel's words (channel order) inside its speech ``spans_s`` (channel order),
    the call decoded again in blocks."""
    recognizer = Recognizer()
    info, blocks = iter_blocks(source, block_s=block_s, max_duration_s=max_duration_s)
    padded = [padded_spans(s, pad_s, duration_s) for s in spans_s]
    out: list[list[Word]] = [[], []]
    for channel, start_s, samples in segment_audio(blocks, info.sample_rate_hz, padded):
        audio = to_recognizer_rate(samples, info.sample_rate_hz)
        out[channel].extend(recognizer.words(audio, start_s))
    for words in out:
        words.sort(key=lambda w: w.start_s)
    return out
