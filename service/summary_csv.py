"""``summary.csv`` of a batch: one row per call, every value read from the call's report.

The columns (``SUMMARY_COLUMNS``) are stable and documented in docs/report.md; each one
after ``file`` and ``report`` is a field of the report (``mirroring.scores.tone.agent.r``
is ``tone_agent_r``). Empty cells are the report's ``null`` (not measured); booleans are
``true`` / ``false`` as in the JSON.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any, get_args

from models.report import DirectionScore, FeatureName, Report, ScorePair, Scores

ROLES = ("agent", "customer")
#: ``mirroring.scores.<dimension>`` in report order: tone, tempo.
DIMENSIONS: tuple[str, ...] = tuple(Scores.model_fields)
#: The fields of each ``mirroring.scores.<dimension>.<role>`` that get a column.
SCORE_FIELDS = ("score", "verdict", "r", "r_low", "r_high")
#: ``mirroring.features`` in report order.
FEATURES: tuple[FeatureName, ...] = get_args(FeatureName)
#: Per feature: ``mirrored``, ``follower`` and ``convergence.direction``.
FEATURE_FIELDS = ("mirrored", "follower", "convergence")
#: The fields of each ``verbal.speakers.<role>`` that get a column (empty without --verbal).
VERBAL_FIELDS = ("echoes", "echo_questions", "echoes_per_10_partner_turns")

SUMMARY_COLUMNS: tuple[str, ...] = (
    ("file", "report", "duration_s")
    + tuple(f"{role}_talk_ratio" for role in ROLES)
    + tuple(
        f"{dim}_{role}_{field}" for dim in DIMENSIONS for role in ROLES for field in SCORE_FIELDS
    )
    + ("detectable_r", "warnings")
    + tuple(f"{feature}_{field}" for feature in FEATURES for field in FEATURE_FIELDS)
    + tuple(f"{role}_{field}" for role in ROLES for field in VERBAL_FIELDS)
    + ("lexical_mirrored",)
)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def summary_row(report: Report, *, file: str, report_name: str) -> dict[str, Any]:
    """The summary of one call: ``file`` is the recording's name as given (relative to the
    batch), ``report_name`` where its JSON report was written (relative to the output
    folder)."""
    row: dict[str, Any] = {
        "file": file,
        "report": report_name,
        "duration_s": report.audio.duration_s,
    }
    for role in ROLES:
        row[f"{role}_talk_ratio"] = getattr(report.speakers, role).talk_ratio
    mirroring = report.mirroring
    for dim in DIMENSIONS:
        pair: ScorePair | None = getattr(mirroring.scores, dim) if mirroring else None
        for role in ROLES:
            score: DirectionScore | None = getattr(pair, role) if pair else None
            for field in SCORE_FIELDS:
                row[f"{dim}_{role}_{field}"] = getattr(score, field) if score else None
    row["detectable_r"] = mirroring.detectable_r if mirroring else None
    row["warnings"] = " ".join(w.code for w in report.warnings)
    for feature in FEATURES:
        result = mirroring.features.get(feature) if mirroring else None
        row[f"{feature}_mirrored"] = result.mirrored if result else None
        row[f"{feature}_follower"] = result.follower if result else None
        row[f"{feature}_convergence"] = result.convergence.direction if result else None
    verbal = report.verbal
    for role in ROLES:
        speaker = getattr(verbal.speakers, role) if verbal else None
        for field in VERBAL_FIELDS:
            row[f"{role}_{field}"] = getattr(speaker, field) if speaker else None
    row["lexical_mirrored"] = verbal.lexical.mirrored if verbal else None
    return {key: _cell(value) for key, value in row.items()}


def summary_csv(rows: Iterable[dict[str, Any]]) -> str:
    """CSV text of :func:`summary_row` rows, header first."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def batch_summary(reports: Sequence[Report], files: Sequence[str], names: Sequence[str]) -> str:
    """``summary.csv`` of a batch: one row per report, in the batch's order."""
    return summary_csv(
        summary_row(report, file=file, report_name=name)
        for report, file, name in zip(reports, files, names, strict=True)
    )
