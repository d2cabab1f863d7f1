"""Espeak-ng calls with a planted relation, analysed once per test session.

Tests of the report's words (``summary``, the HTML page) need calls whose truth is known and
whose mirroring the analysis finds: an 8-minute call where one speaker copies the other's
previous turn in one feature (``tests.synthcall.plan_call("follow", strength=1.0,
plant="turn")``) is found (very strong evidence) while its 60-odd exchanges still leave the
call under the ``mirroring.low_power`` bar. Rendering takes about 35 s the first time (the
utterances are then cached by ``tests.synthcall``); the WAV is kept next to that cache.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from models.params import AnalysisConfig
from models.report import Report
from tests import synthcall as sc

#: (follower, feature, seed) of the planted calls the tests use; each one's analysis finds
#: exactly that follower in that feature (checked by tests/service/test_summary.py).
FOLLOW_CALLS = (("customer", "speaking_rate", 1), ("agent", "pitch_level", 2))
DURATION_S = 480.0


def require_espeak() -> None:
    if not sc.espeak_available():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")


@functools.cache
def follow_call(follower: str, feature: str, seed: int) -> Path:
    """The WAV (8 kHz mu-law stereo) of a call where ``follower`` copies the other's
    previous turn in ``feature``."""
    require_espeak()
    name = f"follow-{follower}-{feature}-{seed}-v{sc.CACHE_VERSION}.wav"
    path = sc.default_cache_dir() / "planted" / name
    if not path.exists():
        rng = np.random.default_rng(seed)
        plan = sc.plan_call(
            "follow",
            duration_s=DURATION_S,
            rng=rng,
            follower=follower,
            feature=feature,
            strength=1.0,
            plant="turn",
        )
        call = sc.render_call(plan, rng=rng)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.wav")
        sc.write_wav(partial, call, encoding="mulaw")
        partial.replace(path)
    return path


@functools.cache
def follow_report(follower: str, feature: str, seed: int) -> Report:
    """The report of :func:`follow_call` (default analysis)."""
    from service.analysis import analyze_source

    path = follow_call(follower, feature, seed)
    return analyze_source(path, AnalysisConfig(), name=path.name)
