"""The recogniser on real speech: the bundled AMI two-party call (samples/SOURCES.md),
analysed with ``verbal`` as users ask for it. Needs the verbal extra (CI installs it)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dsp import pipeline
from dsp.params import AnalysisParams
from dsp.verbal import recognizer_available
from dsp.verbal.recognize import PAD_S

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "ami_two_party_16k.wav"

if not recognizer_available():
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI must install the verbal extra (pocketsphinx): see .ci/run")
    pytest.skip(
        "pocketsphinx not installed (pip install 'mirrorline[verbal]')", allow_module_level=True
    )


@pytest.fixture(scope="module")
def result() -> pipeline.AnalysisResult:
    return pipeline.analyze(SAMPLE, AnalysisParams(verbal=True), mirror=False)


def test_the_report_names_the_model_and_counts_words(result: pipeline.AnalysisResult) -> None:
    verbal = result.verbal
    assert verbal is not None
    assert verbal.recognizer.engine == "pocketsphinx" and verbal.recognizer.language == "en-US"
    assert min(verbal.words) >= 20  # both speakers talk for 15-25 s
    for row, role in enumerate(pipeline.ROLES):
        segments = result.speakers[role].segments_s
        assert verbal.speech_s[row] == pytest.approx(float(np.sum(np.diff(segments, axis=1))))


def test_words_are_the_spoken_ones_inside_each_speakers_speech(
    result: pipeline.AnalysisResult,
) -> None:
    assert result.verbal is not None
    turns = result.verbal.turns
    assert sum(len(t.words) for t in turns) >= 40
    for turn in turns:
        segments = result.speakers[pipeline.ROLES[turn.speaker]].segments_s
        for w in turn.words:
            inside = (segments[:, 0] - PAD_S - 0.01 <= w.start_s) & (
                w.end_s <= segments[:, 1] + PAD_S + 0.01
            )
            assert inside.any(), (turn.speaker, w)
    # Content words of the transcript (corpus: AMI ES2004a excerpt) the recogniser gets
    # right at 16 kHz (bench/verbal_wer.py: WER 0.62 over the excerpt)
    heard = {w.text for t in turns for w in t.words}
    assert (
        len(
            heard
            & {
                "remote",
                "control",
                "design",
                "display",
                "front",
                "functions",
                "recording",
                "mobile",
                "phone",
                "press",
                "menu",
                "options",
            }
        )
        >= 5
    )


def test_report_summary_and_page_carry_the_verbal_section(result: pipeline.AnalysisResult) -> None:
    from models.params import AnalysisConfig
    from models.report import Report
    from service.analysis import build_report
    from service.report_page import render_report_html

    report = build_report(result, AnalysisConfig(verbal=True), source="ami.wav")
    assert report.verbal is not None
    assert report.verbal.recognizer.engine == "pocketsphinx"
    agent = report.verbal.speakers.agent
    assert agent.words == result.verbal.words[0]  # type: ignore[union-attr]
    assert agent.partner_turns >= 1
    # a round trip through JSON keeps it (the schema declares every field)
    assert Report.model_validate_json(report.model_dump_json()) == report
    assert any(s.startswith("In words (recognised automatically, en-US)") for s in report.summary)
    html = render_report_html(report)
    assert 'id="h-verbal"' in html and "pocketsphinx" in html
    from service.summary_csv import summary_row

    row = summary_row(report, file="ami.wav", report_name="ami.json")
    assert row["agent_echoes"] == agent.echoes
    assert row["customer_echo_questions"] == report.verbal.speakers.customer.echo_questions
    lexical = report.verbal.lexical.mirrored
    assert row["lexical_mirrored"] == ("" if lexical is None else str(lexical).lower())
