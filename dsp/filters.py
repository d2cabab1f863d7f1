"""Filter designs shared by the DSP modules."""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
import scipy.signal


@functools.lru_cache(maxsize=16)
def bandpass_sos(low_hz: float, high_hz: float, sr: int) -> npt.NDArray[np.float32]:
    """Second-order Butterworth band-pass as float32 SOS, cached.

    Designing costs ~2 ms, as much as filtering a minute of audio, so each design is made
    once. The array is read-only (shared by every caller): ``sosfilt`` wants a writable copy.
    """
    sos = scipy.signal.butter(2, [low_hz, high_hz], btype="bandpass", fs=sr, output="sos")
    out = np.asarray(sos, dtype=np.float32)
    out.flags.writeable = False
    return out
