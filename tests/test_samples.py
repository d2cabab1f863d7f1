"""The bundled mirroring sample (samples/mirroring_call.opus): it decodes as the call its
truth file describes, the truth carries the planted following, and the report finds it."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest

from dsp.io import decode
from models.params import AnalysisConfig
from models.report import FeatureName, Report
from service.analysis import analyze_path
from service.summary_csv import summary_row

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CALL = SAMPLES / "mirroring_call.opus"
TRUTH = SAMPLES / "mirroring_call.truth.json"
#: The truth's measured turn value of each planted feature.
TURN_VALUE = {"pitch_level": "f0_median_st", "speaking_rate": "speaking_rate_per_s"}


def _truth() -> dict[str, Any]:
    return json.loads(TRUTH.read_text())


def _script() -> Any:
    spec = importlib.util.spec_from_file_location(
        "make_mirroring_sample", SAMPLES / "make_mirroring_sample.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sample_decodes_as_a_small_two_party_call() -> None:
    truth = _truth()
    assert CALL.stat().st_size < 2_000_000
    audio = decode(CALL)
    assert audio.info.codec == "opus" and audio.info.channels == 2
    assert 8 * 60 <= audio.duration_s <= 10 * 60
    assert audio.duration_s == pytest.approx(truth["duration_s"], abs=0.1)
    # two parties, not one voice on both channels: each channel is loud where its own
    # speaker talks and near silent where only the other one does
    rate = audio.sample_rate_hz
    for own in (0, 1):
        alone = [
            t
            for t in truth["turns"]
            if t["speaker"] == ("agent", "customer")[own] and not t["backchannel"]
        ]
        own_db, other_db = [], []
        for t in alone[:40]:
            seg = audio.samples[:, int(t["start_s"] * rate) : int(t["end_s"] * rate)]
            rms = np.sqrt(np.mean(seg.astype(np.float64) ** 2, axis=1)) + 1e-12
            own_db.append(20 * np.log10(rms[own]))
            other_db.append(20 * np.log10(rms[1 - own]))
        assert np.median(np.subtract(own_db, other_db)) > 15


def _partial_r(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    zz = np.column_stack([np.ones_like(z), z])
    rx = x - zz @ np.linalg.lstsq(zz, x, rcond=None)[0]
    ry = y - zz @ np.linalg.lstsq(zz, y, rcond=None)[0]
    return float(np.corrcoef(rx, ry)[0, 1])


def _following(turns: list[dict[str, Any]], follower: str, key: str) -> float:
    """Partial r of each ``follower`` turn's value with the partner's turn just before,
    given the follower's own previous turn: the planted relation, as measured on the clean
    rendered speech."""
    main = [t for t in turns if not t["backchannel"] and t[key] is not None]
    rows = []
    own_last = math.nan
    for prev, turn in zip(main, main[1:], strict=False):
        if turn["speaker"] == follower and prev["speaker"] != follower:
            rows.append((prev[key], turn[key], own_last))
        if turn["speaker"] == follower:
            own_last = turn[key]
    arr = np.asarray(rows, dtype=np.float64)
    arr = arr[np.isfinite(arr).all(axis=1)]
    assert len(arr) > 30  # ~40 exchanges each way
    return _partial_r(arr[:, 0], arr[:, 1], arr[:, 2])


def test_truth_file_is_consistent_with_the_script_and_the_plan() -> None:
    truth = _truth()
    script = _script()
    relation = truth["relation"]
    assert truth["seed"] == script.SEED
    assert relation["features"] == list(script.FEATURES)
    assert relation["follower"] == script.FOLLOWER and relation["kind"] == "follow"
    assert {relation["follower"], relation["leader"]} == {"agent", "customer"}
    assert set(relation["features"]) <= set(get_args(FeatureName))
    for feature, expected in truth["expected_report"].items():
        assert expected["follower"] == relation["follower"], feature
    turns = truth["turns"]
    starts = [t["start_s"] for t in turns if not t["backchannel"]]
    assert starts == sorted(starts)
    assert all(0 <= t["start_s"] < t["end_s"] <= truth["duration_s"] for t in turns)
    main = [t["speaker"] for t in turns if not t["backchannel"]]
    assert all(a != b for a, b in zip(main, main[1:], strict=False))  # turns alternate
    # what was planted is in the rendered speech: the follower's turns take the leader's
    # previous turn (0.98 for pitch, 0.88 for speaking rate on this call). The other way
    # is far weaker but not 0 (0.33, 0.06): the follower copies the leader's whole turn,
    # which holds more of the leader's own walk than the one previous value controlled for
    for feature in relation["features"]:
        key = TURN_VALUE[feature]
        forward = _following(turns, relation["follower"], key)
        backward = _following(turns, relation["leader"], key)
        assert forward > 0.8, (feature, forward)
        assert backward < forward - 0.4, (feature, forward, backward)


@pytest.fixture(scope="module")
def report() -> Report:
    return analyze_path(CALL, AnalysisConfig())


def test_sample_report_shows_the_planted_mirroring(report: Report) -> None:
    truth = _truth()
    follower, leader = truth["relation"]["follower"], truth["relation"]["leader"]
    mirroring = report.mirroring
    assert mirroring is not None
    for feature in truth["relation"]["features"]:
        result = mirroring.features[feature]
        assert result.mirrored is True, feature
        assert result.follower == follower, feature
    # nobody is found following in the planted features' wrong direction, nor anywhere
    # the other way round
    assert all(f.follower != leader for f in mirroring.features.values())
    # both dimensions score the follower above chance (43 and 48 when it was made), the
    # leader within chance
    for dim in ("tone", "tempo"):
        score = getattr(mirroring.scores, dim)
        assert getattr(score, follower).verdict == "above chance", dim
        assert getattr(score, follower).score > 20, dim
        assert getattr(score, leader).verdict == "within chance", dim
    assert "mirroring.low_power" not in [w.code for w in report.warnings]
    # the batch summary row says the same
    row = summary_row(report, file=CALL.name, report_name="mirroring_call.json")
    for feature in truth["relation"]["features"]:
        assert row[f"{feature}_mirrored"] == "true"
        assert row[f"{feature}_follower"] == follower
