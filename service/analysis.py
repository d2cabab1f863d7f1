"""Run analyses and turn their results into reports and CSV: shared by the CLI and the API."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dsp import mirroring as mirror_metrics
from dsp import pipeline
from dsp.frames import HOP_S
from dsp.io import Source
from dsp.mirroring.evidence import Evidence, mirroring_evidence
from dsp.verbal import VerbalResult
from models.params import AnalysisConfig
from models.report import (
    Audio,
    Conversation,
    Loudness,
    Mirroring,
    Pitch,
    Rate,
    Report,
    Roles,
    SkippedMetric,
    Speaker,
    Speakers,
    SpeakerSegments,
    Verbal,
    Warning,
    Window,
    WindowSpeaker,
)
from service.schemas import skipped_metrics
from service.summary import summarize

ProgressCallback = Callable[[float, float | None], None]


def _num(value: Any, digits: int = 4) -> float | None:
    """A JSON-safe float: NaN/inf/None become None, the rest rounded."""
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def _rounded(value: Any, digits: int = 4) -> Any:
    """Recursively make a plain structure JSON-safe: NaN/inf -> None, floats rounded."""
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v, digits) for v in value]
    if isinstance(value, float | np.floating):
        value = float(value)
        if math.isfinite(value) and 0 < abs(value) < 10**-digits:
            return float(f"{value:.3g}")  # small p-values keep their magnitude
        return _num(value, digits)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _segments(segments_s: Any) -> list[tuple[float, float]]:
    return [
        (round(float(a), 2), round(float(b), 2)) for a, b in np.asarray(segments_s).reshape(-1, 2)
    ]


def _speaker(result: pipeline.AnalysisResult, role: str) -> Speaker:
    analysis = result.speakers[role]
    taking = getattr(result.turn_taking, role)
    return Speaker(
        talk_time_s=round(float(taking.talk_time_s), 2),
        talk_ratio=_num(taking.talk_ratio),
        turns=int(taking.turns),
        ipus=len(analysis.ipus_s),
        response_latency_median_s=_num(taking.response_latency_median_s, 3),
        response_latency_p90_s=_num(taking.response_latency_p90_s, 3),
        interruptions=int(taking.interruptions),
        backchannels=int(taking.backchannels),
        longest_monologue_s=_num(taking.longest_monologue_s, 2),
        median_pause_s=_num(analysis.median_pause_s, 3),
        pitch=Pitch(**{k: _num(v, 2) for k, v in analysis.pitch.items()}),
        loudness=Loudness(**{k: _num(v, 2) for k, v in analysis.loudness.items()}),
        rate=Rate(
            syllables=int(analysis.rate.syllables),
            speaking_rate_syl_per_s=_num(analysis.rate.speaking_rate_syl_per_s, 3),
            articulation_rate_syl_per_s=_num(analysis.rate.articulation_rate_syl_per_s, 3),
        ),
    )


def _windows(result: pipeline.AnalysisResult) -> list[Window]:
    win = result.windows
    out = []
    for w in range(len(win.starts_s)):
        per_role = {}
        for row, role in enumerate(pipeline.ROLES):
            per_role[role] = WindowSpeaker(
                speech_s=round(float(win.speech_s[row, w]), 2),
                **{name: _num(values[row, w], 3) for name, values in win.values.items()},
            )
        out.append(
            Window(
                start_s=round(float(win.starts_s[w]), 2),
                end_s=round(float(win.ends_s[w]), 2),
                **per_role,
            )
        )
    return out


def build_report(
    result: pipeline.AnalysisResult, config: AnalysisConfig, *, source: str | None = None
) -> Report:
    """The typed report of one analysis (NaN -> null, seconds rounded to 10 ms)."""
    return _with_skipped(_report(result, config, source=source))


def _report(
    result: pipeline.AnalysisResult, config: AnalysisConfig, *, source: str | None
) -> Report:
    """The report without ``skipped`` (a batch adds mirroring first)."""
    taking = result.turn_taking
    agent_channel = config.agent_channel
    return Report(
        analysis_version=pipeline.ANALYSIS_VERSION,
        source=source,
        audio=Audio(
            duration_s=round(result.duration_s, 3),
            sample_rate_hz=result.info.native_rate_hz,
            analysis_sample_rate_hz=result.info.sample_rate_hz,
            channels=result.info.channels,
            codec=result.info.codec,
            container=result.info.container,
        ),
        roles=Roles(agent_channel=agent_channel, customer_channel=0 if agent_channel else 1),
        speakers=Speakers(agent=_speaker(result, "agent"), customer=_speaker(result, "customer")),
        conversation=Conversation(
            switches_per_min=_num(taking.switches_per_min, 3),
            overlap_s=round(float(taking.overlap_s), 2),
            silence_threshold_s=float(taking.silence_threshold_s),
            silences=_segments(taking.silences),
        ),
        segments=SpeakerSegments(
            agent=_segments(result.speakers["agent"].segments_s),
            customer=_segments(result.speakers["customer"].segments_s),
        ),
        windows=_windows(result),
        mirroring=None if result.mirroring is None else mirroring_model(result.mirroring),
        verbal=None if result.verbal is None else _verbal(result.verbal),
        warnings=[Warning(code=w.code, message=w.message) for w in result.warnings],
        config=config,
    )


def mirroring_model(measured: mirror_metrics.MirroringResult) -> Mirroring:
    return Mirroring.model_validate(_rounded(measured.to_dict()))


def _verbal(measured: VerbalResult) -> Verbal:
    def speaker(row: int) -> dict[str, Any]:
        echoes = measured.speakers[row]
        return {
            "words": measured.words[row],
            "speech_s": measured.speech_s[row],
            "echoes": echoes.echoes,
            "echo_questions": echoes.echo_questions,
            "partner_turns": echoes.partner_turns,
            "echoes_per_10_partner_turns": echoes.echoes_per_10_partner_turns,
            "examples": [
                {
                    "start_s": e.start_s,
                    "end_s": e.end_s,
                    "partner_start_s": e.partner_start_s,
                    "partner_end_s": e.partner_end_s,
                    "words": list(e.words),
                    "question": e.question,
                    "rise_st": e.rise_st,
                }
                for e in echoes.examples
            ],
        }

    lex = measured.lexical
    return Verbal.model_validate(
        _rounded(
            {
                "recognizer": dataclasses.asdict(measured.recognizer),
                "speakers": {role: speaker(row) for row, role in enumerate(pipeline.ROLES)},
                "lexical": {
                    "adjacent": lex.adjacent,
                    "nonadjacent": lex.nonadjacent,
                    "difference": lex.difference,
                    "p": lex.p,
                    "n": lex.n_exchanges,
                    "mirrored": lex.mirrored,
                    "reason": lex.reason,
                },
            },
            3,
        )
    )


def _with_skipped(report: Report) -> Report:
    """``report`` finished: ``skipped`` listing its null metrics and why, and its
    ``summary`` in words (``service.summary``)."""
    found = skipped_metrics(report.model_dump(mode="json"))
    skipped = [SkippedMetric(**item) for item in found]
    return report.model_copy(update={"skipped": skipped, "summary": summarize(report)})


def _tqdm_progress(name: str) -> tuple[ProgressCallback, Callable[[], None]]:
    from tqdm import tqdm

    bar = tqdm(desc=name, unit="s", unit_scale=False, leave=False, dynamic_ncols=True)

    def update(done_s: float, total_s: float | None) -> None:
        if total_s and bar.total is None:
            bar.total = round(total_s)
        bar.n = round(done_s)
        bar.refresh()

    return update, bar.close


def measure_source(
    source: Source,
    config: AnalysisConfig,
    *,
    max_duration_s: float | None = None,
    on_progress: ProgressCallback | None = None,
    workers: int | None = None,
    kept: pipeline.KeptStage1 | None = None,
) -> pipeline.AnalysisResult:
    """The measurements of one recording (path, bytes or file object), before the report;
    ``kept``: its stage 1 computed ahead (a live stream's, ``service.stage1_ahead``)."""
    return pipeline.analyze(
        source,
        config.to_params(),
        max_duration_s=max_duration_s,
        on_progress=on_progress,
        workers=workers,
        kept=kept,
    )


def analyze_source(
    source: Source,
    config: AnalysisConfig,
    *,
    name: str | None = None,
    max_duration_s: float | None = None,
    on_progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> Report:
    """Analyse one recording (path, bytes or file object) into a report."""
    result = measure_source(
        source, config, max_duration_s=max_duration_s, on_progress=on_progress, workers=workers
    )
    return build_report(result, config, source=name)


def call_evidence(result: pipeline.AnalysisResult) -> Evidence:
    """The evidence of a call's mirroring tests: the tables each test read, from the same
    mirroring inputs (``dsp.mirroring.evidence``)."""
    call = result.as_sham()
    return mirroring_evidence(call.agent, call.customer, call.windows)


def analyze_path(
    path: Path, config: AnalysisConfig, *, progress: bool = False, workers: int | None = None
) -> Report:
    """Analyse one file, with a progress bar on stderr when asked."""
    if not progress:
        return analyze_source(path, config, name=path.name, workers=workers)
    update, close = _tqdm_progress(path.name)
    try:
        return analyze_source(path, config, name=path.name, on_progress=update, workers=workers)
    finally:
        close()


def analyze_path_with_evidence(
    path: Path, config: AnalysisConfig, *, progress: bool = False, workers: int | None = None
) -> tuple[Report, Evidence]:
    """:func:`analyze_path` and the evidence of its mirroring tests."""
    update, close = _tqdm_progress(path.name) if progress else (None, None)
    try:
        result = measure_source(path, config, on_progress=update, workers=workers)
        return build_report(result, config, source=path.name), call_evidence(result)
    finally:
        if close is not None:
            close()


def evidence_zip(evidence: Evidence) -> bytes:
    """The evidence files (``Evidence.files()``) as one ZIP archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in evidence.files().items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
    return buffer.getvalue()


def with_measured_mirroring(report: Report, measured: mirror_metrics.MirroringResult) -> Report:
    """``report`` with the mirroring measured apart (a batch, against its other calls) and
    the warnings that come with it (``mirroring.low_power``), replacing earlier ones."""
    kept = [w for w in report.warnings if w.code != pipeline.LOW_POWER_WARNING]
    added = [Warning(code=w.code, message=w.message) for w in pipeline.mirroring_warnings(measured)]
    return report.model_copy(
        update={"mirroring": mirroring_model(measured), "warnings": kept + added}
    )


WINDOW_COLUMNS = (
    "speech_s",
    "pitch_median_st",
    "pitch_sd_st",
    "loudness_db",
    "speaking_rate_syl_per_s",
    "articulation_rate_syl_per_s",
)


def windows_csv(report: Report) -> str:
    """The report's windows as CSV: one row per window, agent_* and customer_* columns."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["start_s", "end_s"]
        + [f"{role}_{col}" for role in pipeline.ROLES for col in WINDOW_COLUMNS]
    )
    for window in report.windows:
        row: list[Any] = [window.start_s, window.end_s]
        for role in pipeline.ROLES:
            values = getattr(window, role)
            row += [
                "" if getattr(values, col) is None else getattr(values, col)
                for col in WINDOW_COLUMNS
            ]
        writer.writerow(row)
    return buffer.getvalue()


TRACK_COLUMNS = (
    "time_s",
    "agent_f0_hz",
    "customer_f0_hz",
    "agent_level_db",
    "customer_level_db",
    "agent_speech",
    "customer_speech",
)


def tracks_csv(path: Path, *, agent_channel: int = 0) -> str:
    """Frame-level tracks (10 ms) of one call as CSV; f0 empty where unvoiced or not speech."""
    result = pipeline.analyze(
        path, pipeline.AnalysisParams(agent_channel=agent_channel), mirror=False
    )
    agent, customer = result.speakers["agent"], result.speakers["customer"]
    n_frames = len(agent.speech)
    buffer = io.StringIO()
    buffer.write(",".join(TRACK_COLUMNS) + "\n")

    def f0_text(values: np.ndarray) -> list[str]:
        return ["" if not np.isfinite(v) else f"{v:.2f}" for v in values]

    times = np.arange(n_frames) * HOP_S
    columns = zip(
        (f"{t:.2f}" for t in times),
        f0_text(agent.f0_hz),
        f0_text(customer.f0_hz),
        (f"{v:.2f}" for v in agent.level_db),
        (f"{v:.2f}" for v in customer.level_db),
        agent.speech.astype(int),
        customer.speech.astype(int),
        strict=True,
    )
    buffer.writelines(",".join(map(str, row)) + "\n" for row in columns)
    return buffer.getvalue()
