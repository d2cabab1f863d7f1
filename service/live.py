"""Live measures of a streamed call: who speaks, talk share, recent pitch, loudness and
speaking rate per speaker, and the cues a coaching screen shows. No web framework.

:class:`LiveAnalyzer` keeps the stage-1 tracks of the last ``window_s`` of both channels,
a little more audio than that, and the per-stream state (talk time, cues). Every
``interval_s`` of audio the stream's new audio and window tracks go, with other streams',
to ``service.live_dsp.measure_windows`` (in a worker process: ``service.live_pool``);
:meth:`LiveAnalyzer.update` keeps the new final tracks and turns what was found into the
event. The cost per event grows with neither the call nor (much) the window
(``bench/live.py``, ``bench/stream_load.py``).

Cues (thresholds in :class:`CueThresholds`, echoed in every event; docs/live.md):

- ``pace_mismatch``: one speaker's speaking rate is ``pace_ratio`` times the other's or
  more, held for ``hold_s``;
- ``loudness_mismatch``: one speaker is ``loudness_db`` louder *relative to their own usual
  level in this call* than the other, held for ``hold_s`` (channel gains differ between
  call legs, so absolute levels of two speakers are not comparable);
- ``long_monologue``: one speaker speaks while the other has been silent ``monologue_s``;
- ``long_silence``: neither has spoken for ``silence_s``;
- ``interruption``: a speaker starts while the other is speaking and both go on together
  for ``interruption_overlap_s`` or more (reported once, in the event after it happened).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.ndimage import binary_closing

from dsp.frames import HOP_S, frame_count, hop_samples
from dsp.pipeline import N_TRACK_ROWS, context_samples
from service.live_dsp import LiveWork, WindowMeasures, measure_windows, round_or_none

ROLES = ("agent", "customer")
#: Speech in the last this-many seconds counts as "speaking now".
SPEAKING_NOW_S = 0.5
#: A speaker's interruptions closer together than this are one.
INTERRUPTION_GAP_S = 1.0
#: Silences shorter than this inside one party's speech do not end it (interruptions).
GAP_CLOSE_S = 0.3


@dataclass(frozen=True)
class CueThresholds:
    """When cues fire (settings ``MIRRORLINE_CUE_*``)."""

    hold_s: float = 10.0
    pace_ratio: float = 1.25
    loudness_db: float = 6.0
    monologue_s: float = 60.0
    silence_s: float = 8.0
    interruption_overlap_s: float = 0.5

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


#: A speaker's last measured speaking rate and loudness stand for this long (s) when the
#: window holds too little of their speech to measure them again.
KNOWN_FOR_S = 30.0


@dataclass
class _Held:
    """A condition and since when (stream time, s) it holds."""

    since: dict[str, float] = field(default_factory=dict)

    def update(self, key: str | None, now: float, keys: tuple[str, ...]) -> float | None:
        """Record that ``key`` holds now (None: none does); return how long it has held."""
        for other in keys:
            if other != key:
                self.since.pop(other, None)
        if key is None:
            return None
        start = self.since.setdefault(key, now)
        return now - start

    def current(self, now: float) -> tuple[str | None, float | None]:
        """The condition holding (if any) and for how long, without changing it."""
        for key, start in self.since.items():
            return key, now - start
        return None, None


class LiveAnalyzer:
    """The live state of one stream. ``feed`` audio as it is released; ``snapshot``, then
    ``update`` with what :func:`measure_windows` found in it (one at a time), makes the
    events; ``compute`` does both for one stream.

    It keeps the window's stage-1 tracks and a little more audio than the window: each
    event computes the tracks of its new audio only (the cost per event does not grow with
    the window), and the frames whose right context has arrived are kept."""

    def __init__(
        self,
        sample_rate_hz: int,
        agent_channel: int,
        *,
        window_s: float = 10.0,
        thresholds: CueThresholds | None = None,
    ) -> None:
        self.sr = int(sample_rate_hz)
        self.agent_channel = int(agent_channel)
        self.window_s = float(window_s)
        self.thresholds = thresholds or CueThresholds()
        self._hop = hop_samples(self.sr)
        self._context = context_samples(self.sr)
        self._window_frames = max(1, int(round(window_s / HOP_S)))
        self._window_n = self._window_frames * self._hop
        # circular audio: sample ``fed - 1`` is at ``(fed - 1) % size`` (no shifting of the
        # whole buffer for every 20-ms frame); it holds the window and its left context
        self._ring = np.zeros((2, self._window_n + self._context + 2 * self._hop), np.int16)
        self.fed = 0  # samples per channel fed so far
        # circular final tracks of the window's frames: stream frame i at i % window_frames
        self._tracks = np.zeros((2, N_TRACK_ROWS, self._window_frames), dtype=np.float32)
        self.final_frames = 0  # stream frames whose tracks are final (kept)
        # update-side state (only update() touches it)
        self.computed_to = 0
        self.talk_frames = np.zeros(2, dtype=np.int64)
        self.last_speech_s: list[float | None] = [None, None]
        self._levels: list[list[float]] = [[], []]
        self._pace = _Held()
        self._loud = _Held()
        self._last_interruption: list[float] = [-math.inf, -math.inf]
        # each speaker's last measured rate and relative loudness, and when (stream time)
        self._known_rate: list[tuple[float, float] | None] = [None, None]
        self._known_rel: list[tuple[float, float] | None] = [None, None]

    # -- audio in (event loop) --------------------------------------------------------

    def feed(self, block: npt.NDArray[np.int16]) -> None:
        """Append released stereo audio, shape (2, n)."""
        n = block.shape[1]
        size = self._ring.shape[1]
        if n == 0 or size == 0:
            return
        if n >= size:
            block, at = block[:, -size:], (self.fed + n - size) % size
        else:
            at = self.fed % size
        m = block.shape[1]
        first = min(m, size - at)
        self._ring[:, at : at + first] = block[:, :first]
        self._ring[:, : m - first] = block[:, first:]
        self.fed += n

    def close(self) -> None:
        """Drop the audio and tracks (an ended stream's record keeps only its numbers)."""
        self._ring = np.zeros((2, 0), dtype=np.int16)
        self._tracks = np.zeros((2, N_TRACK_ROWS, 0), dtype=np.float32)

    def audio(self, start: int, end: int) -> npt.NDArray[np.int16]:
        """Samples ``start .. end - 1`` of the stream (they must still be in the buffer)."""
        size = self._ring.shape[1]
        if not (max(0, self.fed - size) <= start <= end <= self.fed):
            raise ValueError(f"samples {start}..{end} are not buffered (fed {self.fed})")
        index = np.arange(start, end) % size
        return self._ring[:, index]

    def snapshot(self) -> LiveWork:
        """What the DSP needs for the event of the audio fed so far."""
        end = self.fed
        n_frames = frame_count(end, self.sr) if end else 0
        window_first = max(0, n_frames - self._window_frames)
        first = max(self.final_frames, window_first)  # older kept frames left the window
        left = min(self._context, first * self._hop)
        start = first * self._hop - left
        if self._tracks.shape[2] == 0:  # closed
            return LiveWork(self.sr, end, 0, first, self._ring[:, :0], 0, self._tracks)
        kept = np.arange(window_first, first) % self._window_frames
        return LiveWork(
            sample_rate_hz=self.sr,
            end=end,
            window_samples=min(end, self._window_n),
            first_frame=first,
            audio=self.audio(min(start, end), end),
            left=left,
            tracks=self._tracks[:, :, kept],
        )

    # -- events -----------------------------------------------------------------------

    def compute(self, work: LiveWork) -> dict[str, Any]:
        """The live event of ``work`` (a :meth:`snapshot`), computed here."""
        return self.update(measure_windows([work])[0])

    def update(self, found: WindowMeasures) -> dict[str, Any]:
        """The live event of the window ending at sample ``found.end``, whose DSP gave
        ``found``; its final tracks are kept for the next events."""
        end = found.end
        n_new = found.final_tracks.shape[2]
        if self._tracks.shape[2] and found.first_frame >= self.final_frames:
            index = np.arange(found.first_frame, found.first_frame + n_new)
            self._tracks[:, :, index % self._window_frames] = found.final_tracks
            self.final_frames = found.first_frame + n_new
        now = end / self.sr
        n = found.n_samples
        speech = found.speech
        new_samples = max(0, end - self.computed_to)
        self.computed_to = end
        speakers: list[dict[str, Any]] = [{}, {}]
        n_frames = speech.shape[1]
        new_frames = min(n_frames, int(round(new_samples / self._hop)))
        recent = int(round(SPEAKING_NOW_S / HOP_S))
        for c in (0, 1):
            mask = speech[c]
            new = mask[n_frames - new_frames :] if new_frames else mask[:0]
            self.talk_frames[c] += int(new.sum())
            if new.any():
                last = int(np.flatnonzero(new)[-1]) + n_frames - new_frames
                self.last_speech_s[c] = now - (n_frames - 1 - last) * HOP_S
            speakers[c] = {
                "channel": c,
                "speaking": bool(mask[-recent:].any()) if n_frames else False,
                "talk_s": round(float(self.talk_frames[c]) * HOP_S, 2),
                **found.measures[c],
            }
        total = float(self.talk_frames.sum())
        for c in (0, 1):
            share = self.talk_frames[c] / total if total > 0 else None
            speakers[c]["talk_share"] = round_or_none(share, 3)
            loud = speakers[c]["loudness_db"]
            if loud is not None:
                self._levels[c].append(loud)
        cues = self._cues(now, speakers, speech, new_frames)
        a, b = self.agent_channel, 1 - self.agent_channel
        return {
            "t_s": round(now, 2),
            "window_s": round(min(n / self.sr, self.window_s), 2),
            "speakers": {"agent": speakers[a], "customer": speakers[b]},
            "cues": cues,
            "thresholds": self.thresholds.as_dict(),
        }

    # -- cues -------------------------------------------------------------------------

    @staticmethod
    def _recent(known: tuple[float, float] | None, now: float) -> float | None:
        if known is None or now - known[1] > KNOWN_FOR_S:
            return None
        return known[0]

    def _role(self, channel: int) -> str:
        return "agent" if channel == self.agent_channel else "customer"

    def _cues(
        self,
        now: float,
        speakers: list[dict[str, Any]],
        speech: npt.NDArray[np.bool_],
        new_frames: int,
    ) -> list[dict[str, Any]]:
        th = self.thresholds
        cues: list[dict[str, Any]] = []
        a, b = self.agent_channel, 1 - self.agent_channel
        # pace: ratio of the two speaking rates. In turn-taking one party is often silent
        # in the window: each party's last measured rate counts for KNOWN_FOR_S, and while
        # a rate is unknown the mismatch keeps its state (neither starts nor ends).
        for c in (0, 1):
            if speakers[c]["speaking_rate"]:
                self._known_rate[c] = (float(speakers[c]["speaking_rate"]), now)
        ra, rb = self._recent(self._known_rate[a], now), self._recent(self._known_rate[b], now)
        ratio = None
        if ra and rb:
            ratio = ra / rb
            key = None
            if ratio >= th.pace_ratio:
                key = "agent"
            elif ratio <= 1 / th.pace_ratio:
                key = "customer"
            held = self._pace.update(key, now, ROLES)
        else:
            key, held = self._pace.current(now)
        if key is not None and held is not None and held >= th.hold_s and ratio is not None:
            faster = ratio if key == "agent" else 1 / ratio
            other = "customer" if key == "agent" else "agent"
            cues.append(
                {
                    "cue": "pace_mismatch",
                    "speaker": key,
                    "held_s": round(held, 1),
                    "value": round(faster, 2),
                    "detail": f"the {key} speaks {100 * (faster - 1):.0f} % faster than "
                    f"the {other}",
                }
            )
        # loudness, each relative to its own usual level so far
        for c in (0, 1):
            loud = speakers[c]["loudness_db"]
            if loud is not None and len(self._levels[c]) >= 3:
                self._known_rel[c] = (loud - float(np.median(self._levels[c])), now)
        rel_a, rel_b = self._recent(self._known_rel[a], now), self._recent(self._known_rel[b], now)
        diff = None
        if rel_a is not None and rel_b is not None:
            diff = rel_a - rel_b
            key = None
            if diff >= th.loudness_db:
                key = "agent"
            elif diff <= -th.loudness_db:
                key = "customer"
            held = self._loud.update(key, now, ROLES)
        else:
            key, held = self._loud.current(now)
        if key is not None and held is not None and held >= th.hold_s and diff is not None:
            cues.append(
                {
                    "cue": "loudness_mismatch",
                    "speaker": key,
                    "held_s": round(held, 1),
                    "value": round(abs(diff), 1),
                    "detail": f"the {key} is {abs(diff):.0f} dB louder than usual, "
                    "relative to the other",
                }
            )
        # monologue and silence
        for c in (0, 1):
            other_last = self.last_speech_s[1 - c]
            if speakers[c]["speaking"]:
                quiet = now - (other_last if other_last is not None else 0.0)
                if quiet >= th.monologue_s:
                    cues.append(
                        {
                            "cue": "long_monologue",
                            "speaker": self._role(c),
                            "held_s": round(quiet, 1),
                            "value": round(quiet, 1),
                            "detail": f"the {self._role(c)} has spoken alone for {quiet:.0f} s",
                        }
                    )
        lasts = [t for t in self.last_speech_s if t is not None]
        quiet = now - (max(lasts) if lasts else 0.0)
        if quiet >= th.silence_s and not any(s["speaking"] for s in speakers):
            cues.append(
                {
                    "cue": "long_silence",
                    "speaker": None,
                    "held_s": round(quiet, 1),
                    "value": round(quiet, 1),
                    "detail": f"nobody has spoken for {quiet:.0f} s",
                }
            )
        cues.extend(self._interruptions(now, speech, new_frames))
        return cues

    def _interruptions(
        self, now: float, speech: npt.NDArray[np.bool_], new_frames: int
    ) -> list[dict[str, Any]]:
        th = self.thresholds
        n_frames = speech.shape[1]
        need = int(round(th.interruption_overlap_s / HOP_S))
        if n_frames < need + 2:
            return []
        # onsets that may have completed their overlap since the last event
        first = max(1, n_frames - new_frames - need - 1)
        # pauses between syllables and words are not turn ends: close gaps < GAP_CLOSE_S
        width = int(round(GAP_CLOSE_S / HOP_S)) | 1
        speech = np.stack(
            [
                binary_closing(np.pad(m, width), structure=np.ones(width))[width:-width]
                for m in speech
            ]
        )
        both = speech[0] & speech[1]
        found = []
        for c in (0, 1):
            mine, other = speech[c], speech[1 - c]
            onsets = np.flatnonzero(mine[first:] & ~mine[first - 1 : -1]) + first
            for onset in onsets:
                if not other[onset - 1] or onset + need > n_frames:
                    continue
                if not both[onset : onset + need].all():
                    continue
                at = now - (n_frames - onset) * HOP_S
                if at - self._last_interruption[c] < INTERRUPTION_GAP_S:
                    continue
                self._last_interruption[c] = at
                role = self._role(c)
                found.append(
                    {
                        "cue": "interruption",
                        "speaker": role,
                        "held_s": None,
                        "value": round(at, 2),
                        "detail": f"the {role} started speaking over the "
                        f"{self._role(1 - c)} at {at:.1f} s",
                    }
                )
        return found
