"""A batch measures each call's mirroring apart, against the other calls: its report must
carry the same mirroring warnings a single-call report does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.mirroring_sim import simulate_call
from dsp.mirroring import analyze_mirroring
from dsp.pipeline import LOW_POWER_WARNING
from models.params import AnalysisConfig
from service.analysis import analyze_path, with_measured_mirroring

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "activity_ami_L-FEE016_R-FEE013_8k_ulaw.wav"


def test_batch_report_keeps_the_low_power_warning() -> None:
    report = analyze_path(SAMPLE, AnalysisConfig())
    short = simulate_call(np.random.default_rng(7), duration_s=270.0)
    long = simulate_call(np.random.default_rng(7), duration_s=1200.0)
    measured_short = analyze_mirroring(short.agent, short.customer, short.windows)
    measured_long = analyze_mirroring(long.agent, long.customer, long.windows)

    with_short = with_measured_mirroring(report, measured_short)
    codes = [w.code for w in with_short.warnings]
    assert codes.count(LOW_POWER_WARNING) == 1
    assert with_short.mirroring is not None
    assert with_short.mirroring.detectable_r == pytest.approx(measured_short.detectable_r, abs=0.01)
    # measured again (a longer call): the earlier warning goes, no duplicate
    again = with_measured_mirroring(with_short, measured_long)
    assert LOW_POWER_WARNING not in [w.code for w in again.warnings]
    # the call's other warnings stay
    assert [w for w in again.warnings if w.code != LOW_POWER_WARNING] == [
        w for w in report.warnings if w.code != LOW_POWER_WARNING
    ]
