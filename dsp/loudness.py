"""Frame level in dB: the volume track.

Levels are dBFS of the RMS over a short window centred on each 10 ms frame. Channel gains
differ between call legs (separate AGC, different lines), so across speakers only the
*movements* of level are comparable; within a speaker the level is meaningful as is.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from dsp.errors import ParameterError
from dsp.frames import frame_count, hop_samples

SILENCE_FLOOR_DB = -120.0
_MAX_BLOCKS_PER_WINDOW = 16


def level_db(
    y: npt.NDArray[np.floating], sample_rate_hz: int, *, window_s: float = 0.03
) -> npt.NDArray[np.float32]:
    """RMS level of each 10 ms frame in dBFS (full scale sine = -3 dB).

    Parameters
    ----------
    y : (n,) float array
        One channel, samples in [-1, 1].
    sample_rate_hz : int
        Sampling rate of ``y``.
    window_s : float
        Length of the RMS window centred on each frame, 10-100 ms.

    Returns
    -------
    (T,) float32, T = ``frame_count(n, sample_rate_hz)``; digital silence is -120 dB.
    """
    if not 0.01 <= window_s <= 0.1:
        raise ParameterError(f"window_s must be within 0.01-0.1 s, got {window_s}")
    hop = hop_samples(sample_rate_hz)
    win = max(hop, int(round(window_s * sample_rate_hz)))
    n_frames = frame_count(len(y), sample_rate_hz)
    half = win // 2
    # Sums of squares over short blocks that tile the windows (block = gcd of hop, half and
    # window: 5 ms at the usual rates), then each window adds its few blocks: float64 sums
    # over 5-30 ms only (a cumulative sum over the block would be 4x slower; same float32
    # levels on the AMI calls, differences would be in the last bit at most).
    block = math.gcd(math.gcd(hop, half), win)
    per_window = win // block
    if per_window > _MAX_BLOCKS_PER_WINDOW:  # odd rate: cumulative sums, O(n) anyway
        padded = np.zeros(len(y) + 2 * half + hop, dtype=np.float64)
        padded[half : half + len(y)] = y
        cumsum = np.concatenate([[0.0], np.cumsum(padded * padded)])
        starts = np.arange(n_frames) * hop
        energy = (cumsum[starts + win] - cumsum[starts]) / win
    else:
        padded = np.zeros(-(-(len(y) + 2 * half + hop) // block) * block, dtype=np.float64)
        padded[half : half + len(y)] = y
        np.square(padded, out=padded)
        sums = padded.reshape(-1, block).sum(axis=1)
        del padded
        starts = np.arange(n_frames) * (hop // block)
        energy = sums[starts].copy()
        for j in range(1, per_window):
            energy += sums[starts + j]
        energy /= win
    with np.errstate(divide="ignore"):
        db = 10.0 * np.log10(np.maximum(energy, 0.0))
    return np.maximum(db, SILENCE_FLOOR_DB).astype(np.float32)
