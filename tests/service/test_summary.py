"""The report's ``summary`` (service.summary): sentences generated from the statistics.

On espeak-ng calls with a planted follower (tests/plantedcalls.py) the sentences name that
follower and feature and not the other direction; a call too short to tell says so; the
building blocks (evidence grades, timeline stretches, who moved) follow their definitions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from models.params import AnalysisConfig
from models.report import ConvergenceResult, Report, TimelinePoint, Warning
from service.analysis import analyze_source
from service.summary import (
    FEATURE_WORDS,
    Stretch,
    evidence_words,
    feature_verdict,
    follow_test,
    movement_words,
    summarize,
    timeline_stretches,
)
from tests.plantedcalls import FOLLOW_CALLS, follow_report

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "ami_two_party_8k_ulaw.wav"


@pytest.fixture(scope="module")
def sample() -> Report:
    return analyze_source(SAMPLE, AnalysisConfig(), name=SAMPLE.name)


@pytest.mark.parametrize(("follower", "feature", "seed"), FOLLOW_CALLS)
def test_summary_names_the_planted_follower_and_feature(
    follower: str, feature: str, seed: int
) -> None:
    report = follow_report(follower, feature, seed)
    leader = "agent" if follower == "customer" else "customer"
    assert report.summary == summarize(report)
    assert 3 <= len(report.summary) <= 6
    text = " ".join(report.summary)
    adapted = [s for s in report.summary if "adapted turn by turn" in s]
    assert len(adapted) == 1, report.summary
    assert f"the {follower} adapted turn by turn to the {leader}'s" in adapted[0].lower()
    feature_words = FEATURE_WORDS[feature]
    assert feature_words in adapted[0]
    assert f"the {leader} adapted" not in text.lower()
    # the sentence grades the follower's own test; a planted copy shows at least strong evidence
    test = follow_test(report.mirroring.features[feature], follower)  # type: ignore[index]
    assert test.p_adj is not None and test.p_adj < 0.01
    assert f"{feature_words} ({evidence_words(test.p_adj, report.mirroring.alpha)})" in adapted[0]
    # the score sentence credits the follower, and the page's verdict of the feature says it
    assert f"the {follower}'s following of the {leader} scores" in text
    verdict = feature_verdict(report.mirroring, feature)  # type: ignore[arg-type]
    assert verdict.startswith(f"The {follower} followed the {leader}'s {FEATURE_WORDS[feature]}")
    # 8 minutes is still under the low-power bar: the caveat says what was not shown
    assert any(w.code == "mirroring.low_power" for w in report.warnings)
    assert "features not named may still have been mirrored" in report.summary[-1]


def test_a_call_too_short_to_tell_says_so(sample: Report) -> None:
    assert sample.mirroring is not None and sample.mirroring.detectable_r is None
    assert 3 <= len(sample.summary) <= 6
    assert sample.summary[0].startswith("In this 42 s call the agent did 50 % of the talking")
    assert "cannot be told" in sample.summary[1]
    assert sample.summary[-1].startswith("The call is too short to tell")
    assert not any("adapted turn by turn" in s for s in sample.summary)


def test_low_power_caveat_without_a_finding(sample: Report) -> None:
    """With statistics but the low-power warning and no follower: 'not shown' is not
    'did not happen'."""
    assert sample.mirroring is not None
    mirroring = sample.mirroring.model_copy(update={"detectable_r": 0.71, "n_exchanges": 17})
    warned = sample.model_copy(
        update={
            "mirroring": mirroring,
            "warnings": [*sample.warnings, Warning(code="mirroring.low_power", message="x")],
        }
    )
    sentences = summarize(warned)
    assert "r = 0.71" in sentences[-1] and "does not mean it did not happen" in sentences[-1]
    unwarned = sample.model_copy(
        update={"mirroring": mirroring.model_copy(update={"detectable_r": 0.3})}
    )
    sentences = summarize(unwarned)
    assert "Neither speaker measurably adapted" in sentences[1] and "r = 0.30" in sentences[1]
    assert not any("too short" in s for s in sentences)


def test_fake_stereo_says_mirroring_cannot_be_measured(sample: Report) -> None:
    fake = sample.model_copy(
        update={"warnings": [Warning(code="channels.identical", message="same signal")]}
    )
    assert "fake stereo" in summarize(fake)[-1]


def test_evidence_grades_follow_the_adjusted_p() -> None:
    assert evidence_words(0.0004, 0.05) == "very strong evidence"
    assert evidence_words(0.004, 0.05) == "strong evidence"
    assert evidence_words(0.04, 0.05) == "moderate evidence"
    assert evidence_words(0.06, 0.05) == "no evidence"


def _point(start: float, r: float | None) -> TimelinePoint:
    return TimelinePoint(
        start_s=start, end_s=start + 100.0, tone_r=r, tempo_r=None, features={"loudness": r}
    )


def test_timeline_stretches_need_three_points_beyond_the_bar() -> None:
    rs = [0.1, 0.6, 0.7, 0.55, 0.2, 0.9, 0.9, -0.6, -0.7, -0.8, -0.9, None]
    points = [_point(10.0 * i, r) for i, r in enumerate(rs)]
    # a point stands for the middle of its span (start + 50 s) +- half the 10 s step
    assert timeline_stretches(points, "tone") == [
        Stretch(55.0, 85.0, together=True),
        Stretch(115.0, 155.0, together=False),
    ]
    assert timeline_stretches(points, "loudness") == timeline_stretches(points, "tone")
    assert timeline_stretches(points, "tempo") == []
    assert timeline_stretches([], "tone") == []


def _convergence(moved: float, ci: tuple[float, float]) -> ConvergenceResult:
    return ConvergenceResult(
        value=0.1, unit="per_min", r_time=0.5, p=0.001, p_adj=0.01, direction="converging",
        n=40, distance_start=2.0, distance_start_ci=(1.5, 2.5), distance_end=0.5,
        distance_end_ci=(0.0, 1.0), agent_moved=moved, agent_moved_ci=ci, customer_moved=0.1,
        customer_moved_ci=(-0.3, 0.5), sham_z=None,
    )  # fmt: skip


def test_who_moved_needs_an_interval_clear_of_zero() -> None:
    toward = _convergence(1.2, (0.4, 2.0))
    assert movement_words(toward, "agent") == "the agent moved toward the customer"
    assert movement_words(toward, "customer") is None  # its interval spans 0
    away = _convergence(-1.2, (-2.0, -0.4))
    assert movement_words(away, "agent") == "the agent moved away from the customer"


def test_convergence_sentence_names_who_moved_and_at_most_six_sentences() -> None:
    """A converging feature on top of a call that already has a follower, scores, timeline
    stretches and the low-power caveat: the convergence sentence says who moved (only the
    speaker whose interval is clear of 0), and the summary stays within six sentences."""
    report = follow_report(*FOLLOW_CALLS[0])
    assert report.mirroring is not None
    feature = report.mirroring.features["pitch_variability"]
    converging = feature.model_copy(
        update={"convergence": _convergence(1.2, (0.4, 2.0)), "mirrored": True}
    )
    features = dict(report.mirroring.features, pitch_variability=converging)
    changed = report.model_copy(
        update={"mirroring": report.mirroring.model_copy(update={"features": features})}
    )
    sentences = summarize(changed)
    assert len(sentences) == 6
    assert (
        "Over the call their intonation range grew closer (the agent moved toward the "
        "customer)." in sentences
    )
    verdict = feature_verdict(changed.mirroring, "pitch_variability")  # type: ignore[arg-type]
    assert "grew closer over the call, from 2 to 0.5 semitones apart: the agent moved" in verdict
    assert sentences[-1].startswith("The call is short")  # the caveat is never dropped
