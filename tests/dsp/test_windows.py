"""Window bookkeeping: starts (the values are tested with dsp.measures)."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.errors import ParameterError
from dsp.windows import window_starts_s


def test_window_starts() -> None:
    np.testing.assert_allclose(
        window_starts_s(100.0, window_s=30.0, hop_s=10.0), np.arange(0, 71, 10)
    )
    np.testing.assert_allclose(window_starts_s(12.0, window_s=30.0, hop_s=10.0), [0.0])
    with pytest.raises(ParameterError):
        window_starts_s(100.0, window_s=10.0, hop_s=20.0)
