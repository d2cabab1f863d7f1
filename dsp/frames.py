"""The one analysis clock: 10 ms frames shared by every per-frame track.

Frame ``i`` is centred on sample ``i * hop`` (librosa's ``center=True`` convention), so a
signal of ``n`` samples has ``1 + n // hop`` frames and frame ``i`` stands for time
``i * HOP_S``. Segments in seconds treat frame ``i`` as the interval
``[i * HOP_S, (i + 1) * HOP_S)``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

HOP_S = 0.01


def hop_samples(sample_rate_hz: int) -> int:
    """Samples per 10 ms frame hop at ``sample_rate_hz`` (80 at 8 kHz, 160 at 16 kHz)."""
    return int(round(sample_rate_hz * HOP_S))


def frame_count(n_samples: int, sample_rate_hz: int) -> int:
    """Number of 10 ms frames for ``n_samples`` samples (``1 + n // hop``, as librosa)."""
    return 1 + int(n_samples) // hop_samples(sample_rate_hz)


def frame_times_s(n_frames: int) -> npt.NDArray[np.float64]:
    """Start time in seconds of each of ``n_frames`` frames."""
    return np.arange(n_frames, dtype=np.float64) * HOP_S


def mask_to_segments(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """Runs of True in a per-frame mask as an ``(k, 2)`` array of ``[start_s, end_s]``."""
    padded = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]
    return np.column_stack([starts * HOP_S, ends * HOP_S]).astype(np.float64).reshape(-1, 2)


def segments_to_mask(segments_s: npt.NDArray[np.float64], n_frames: int) -> npt.NDArray[np.bool_]:
    """Inverse of :func:`mask_to_segments`: ``(k, 2)`` seconds to a per-frame mask."""
    mask = np.zeros(n_frames, dtype=bool)
    for start_s, end_s in np.asarray(segments_s, dtype=np.float64).reshape(-1, 2):
        lo = max(0, int(round(start_s / HOP_S)))
        hi = min(n_frames, int(round(end_s / HOP_S)))
        mask[lo:hi] = True
    return mask
