"""Window bookkeeping: starts, and speech time inside each window."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.errors import ParameterError
from dsp.windows import _segments_overlap_s, window_starts_s


def test_window_starts() -> None:
    np.testing.assert_allclose(
        window_starts_s(100.0, window_s=30.0, hop_s=10.0), np.arange(0, 71, 10)
    )
    np.testing.assert_allclose(window_starts_s(12.0, window_s=30.0, hop_s=10.0), [0.0])
    with pytest.raises(ParameterError):
        window_starts_s(100.0, window_s=10.0, hop_s=20.0)


def test_overlap_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        k = int(rng.integers(0, 20))
        segments = np.sort(rng.uniform(0, 100, 2 * k)).reshape(-1, 2)
        starts = rng.uniform(-10, 110, 30)
        ends = starts + rng.uniform(0, 40, 30)
        lo = np.maximum(segments[None, :, 0], starts[:, None])
        hi = np.minimum(segments[None, :, 1], ends[:, None])
        expected = np.clip(hi - lo, 0, None).sum(axis=1)
        np.testing.assert_allclose(_segments_overlap_s(segments, starts, ends), expected, atol=1e-9)


def test_overlap_known_values() -> None:
    segments = np.array([[1.0, 3.0], [5.0, 6.0]])
    got = _segments_overlap_s(
        segments, np.array([0.0, 2.0, 3.0, 5.5]), np.array([10.0, 5.5, 5.0, 5.6])
    )
    np.testing.assert_allclose(got, [3.0, 1.5, 0.0, 0.1])
