"""A jitter buffer for streamed call audio: frames placed by their position, not arrival.

Call platforms send audio in small frames (Twilio: 20 ms per track) that may arrive out of
order (Telnyx says so), twice, or not at all. :class:`JitterBuffer` holds the frames of
every channel by their start sample and releases audio only up to ``delay_samples`` behind
the furthest frame seen, so a frame that arrives up to that late still lands in its place:

- reordered frames are put back in order;
- a frame whose start was already received is a duplicate and dropped;
- a frame that arrives after its place was released is late and dropped;
- where no frame came, the channel is silent (zeros);
- a frame that starts more than ``max_jump_samples`` past what was released is refused
  (a broken timestamp must not make the server allocate hours of silence).

Audio every channel holds without a hole is released at once (a stream whose frames come
in order waits for nothing); only a hole holds the release back, up to ``delay_samples``.

Pure and synchronous (numpy only): the stream code decides when to release; ``flush``
releases everything at the end. Audio is int16 samples, one array per frame and channel.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]
Placed = Literal["placed", "duplicate", "late", "too_far", "empty"]


@dataclass
class JitterStats:
    """What happened to the frames pushed so far."""

    frames: int = 0
    placed: int = 0
    duplicates: int = 0
    late: int = 0
    too_far: int = 0
    #: samples per channel released without any frame covering them (filled with silence)
    filled_samples: list[int] = field(default_factory=list)


class JitterBuffer:
    """Reorders, de-duplicates and gap-fills ``channels`` tracks of int16 frames.

    Parameters
    ----------
    channels : int
        Number of tracks (2 for a call).
    delay_samples : int
        How far behind the furthest frame seen audio is released: the reordering window.
    max_jump_samples : int
        A frame starting further than this past the released position is refused.
    """

    def __init__(self, channels: int, *, delay_samples: int, max_jump_samples: int) -> None:
        if channels < 1 or delay_samples < 0 or max_jump_samples < 1:
            raise ValueError("channels >= 1, delay_samples >= 0 and max_jump_samples >= 1")
        self.channels = channels
        self.delay_samples = int(delay_samples)
        self.max_jump_samples = int(max_jump_samples)
        self.released = 0  # every channel is released up to this sample position
        self.high = 0  # furthest frame end seen
        self._pending: list[dict[int, Int16Array]] = [{} for _ in range(channels)]
        # per channel: frames are contiguous from ``released`` up to here
        self._contiguous = [0] * channels
        # per channel: starts of frames released within the last ``delay_samples``, so that a
        # copy arriving after its original was released counts as a duplicate, not late
        self._recent: list[deque[int]] = [deque() for _ in range(channels)]
        self.stats = JitterStats(filled_samples=[0] * channels)

    @property
    def pending_samples(self) -> int:
        """Samples per channel held back (not yet released)."""
        return max(0, self.high - self.released)

    def push(self, channel: int, start: int, samples: npt.ArrayLike) -> Placed:
        """Put one frame of ``channel`` whose first sample belongs at ``start``."""
        if not 0 <= channel < self.channels:
            raise ValueError(f"channel {channel} out of range")
        frame = np.asarray(samples, dtype=np.int16).reshape(-1)
        self.stats.frames += 1
        if frame.size == 0:
            return "empty"
        start = int(start)
        end = start + frame.size
        if start < 0 or end <= self.released:
            if start in self._recent[channel]:
                self.stats.duplicates += 1
                return "duplicate"
            self.stats.late += 1
            return "late"
        if start - self.released > self.max_jump_samples:
            self.stats.too_far += 1
            return "too_far"
        pending = self._pending[channel]
        if start in pending:
            self.stats.duplicates += 1
            return "duplicate"
        pending[start] = frame
        self.high = max(self.high, end)
        self.stats.placed += 1
        if start == self._contiguous[channel]:
            self._advance(channel)
        return "placed"

    def _advance(self, channel: int) -> None:
        pending, at = self._pending[channel], self._contiguous[channel]
        while at in pending:
            at += pending[at].size
        self._contiguous[channel] = at

    @property
    def ready_samples(self) -> int:
        """Samples per channel that :meth:`release` would give now."""
        return max(0, max(self.high - self.delay_samples, min(self._contiguous)) - self.released)

    def release(self) -> Int16Array:
        """The audio that can no longer change: shape ``(channels, n)``, possibly ``n = 0``:
        what every channel holds without a hole, and anything ``delay_samples`` behind the
        furthest frame seen."""
        return self._release_to(max(self.high - self.delay_samples, min(self._contiguous)))

    def flush(self) -> Int16Array:
        """Everything held, up to the furthest frame seen (the end of a stream)."""
        return self._release_to(self.high)

    def _release_to(self, upto: int) -> Int16Array:
        if upto <= self.released:
            return np.zeros((self.channels, 0), dtype=np.int16)
        base = self.released
        out = np.zeros((self.channels, upto - base), dtype=np.int16)
        for channel, pending in enumerate(self._pending):
            covered = np.zeros(upto - base, dtype=bool)
            for start in sorted(pending):
                if start >= upto:
                    break
                frame = pending.pop(start)
                self._recent[channel].append(start)
                end = start + frame.size
                lo = max(start, base)
                hi = min(end, upto)
                if lo < hi:
                    out[channel, lo - base : hi - base] = frame[lo - start : hi - start]
                    covered[lo - base : hi - base] = True
                if end > upto and upto not in pending:  # the rest waits for the next release
                    pending[upto] = frame[upto - start :]
            self.stats.filled_samples[channel] += int((~covered).sum())
            recent = self._recent[channel]
            while recent and recent[0] < upto - self.delay_samples:
                recent.popleft()
        self.released = upto
        for channel in range(self.channels):
            self._contiguous[channel] = max(self._contiguous[channel], upto)
            self._advance(channel)
        return out
