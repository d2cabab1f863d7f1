"""The evidence behind a call's mirroring verdicts, as tables a researcher can recompute
each test from: the exchanges each directional synchrony test used (leader's turn-final
``x``, follower's turn-initial ``y``, the follower's own-past covariates), each local
proximity difference with its non-adjacent baseline, the window series windowed synchrony
and convergence read, the merged turns and each speaker's IPUs.

The tables come from the very run that computes the statistics (``analyze._measure`` fills
a :class:`~dsp.mirroring.analyze.Design` while it tests): no second definition of any
value. Plain Python and numpy; CSV text with full float precision (``repr``: a value read
back is the same double), empty cells for missing values.
"""

from __future__ import annotations

import csv
import inspect
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dsp.mirroring.analyze import Design, _measure, _Settings, analyze_mirroring
from dsp.mirroring.exchanges import Turns
from dsp.mirroring.inputs import (
    FEATURES,
    UNITS,
    FloatArray,
    ShamCall,
    SpeakerUnits,
    WindowSeries,
    canonical,
)
from dsp.mirroring.lines import SpeakerLine, line_convergence
from dsp.mirroring.proximity import ProximityRows
from dsp.mirroring.results import MirroringResult
from dsp.mirroring.synchrony import SYNC_COVARIATES, SyncDesign

#: Units of the features' raw values (IPU and turn tables): loudness is in dB there and
#: z-scored per speaker only where a test reads it (proximity rows, window series).
RAW_UNITS = {**UNITS, "loudness": "dB"}
ROLES = ("agent", "customer")
DIRECTIONS = ("agent_follows_customer", "customer_follows_agent")

#: A column: (name, unit, description).
Column = tuple[str, str, str]


@dataclass(frozen=True)
class Table:
    """One CSV file of the evidence."""

    name: str  # file name
    about: str  # one line: what a row is
    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([c[0] for c in self.columns])
        writer.writerows([_cell(v) for v in row] for row in self.rows)
        return buffer.getvalue()


@dataclass(frozen=True)
class Evidence:
    """A call's mirroring result and the tables its tests read."""

    result: MirroringResult
    tables: tuple[Table, ...]

    def files(self) -> dict[str, str]:
        """File name -> CSV text, with ``index.csv`` (every column with its unit) and
        ``README.txt``."""
        out = {t.name: t.to_csv() for t in self.tables}
        index = Table(
            "index.csv",
            "one row per column of every file",
            (
                ("file", "", "file name"),
                ("column", "", "column name"),
                ("unit", "", "unit (empty: none)"),
                ("description", "", "what the column holds"),
            ),
            tuple(
                (t.name, name, unit, what) for t in self.tables for name, unit, what in t.columns
            ),
        )
        out["index.csv"] = index.to_csv()
        out["README.txt"] = _readme(self.tables)
        return out

    def write(self, folder: Path) -> list[Path]:
        """Write :meth:`files` into ``folder`` (created if needed); the paths written."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, text in self.files().items():
            path = folder / name
            path.write_text(text, encoding="utf-8")
            paths.append(path)
        return paths


def mirroring_evidence(
    agent: SpeakerUnits,
    customer: SpeakerUnits,
    windows: WindowSeries,
    *,
    shams: Sequence[ShamCall] = (),
    **params: Any,
) -> Evidence:
    """The mirroring result of one call (exactly :func:`analyze_mirroring`'s, same inputs
    and keyword parameters) with the tables its tests read."""
    defaults = {
        name: p.default
        for name, p in inspect.signature(analyze_mirroring).parameters.items()
        if name in _Settings.__dataclass_fields__
    }
    unknown = set(params) - set(defaults)
    if unknown:
        raise TypeError(f"unexpected parameters: {', '.join(sorted(unknown))}")
    design = Design()
    result = _measure(
        agent,
        customer,
        windows,
        shams=shams,
        settings=_Settings(**{**defaults, **params}),
        design=design,
    )
    assert design.turns is not None and design.centres_s is not None
    tables = [_summary(result, design)]
    for name in FEATURES:
        for direction, rows in zip(
            DIRECTIONS, (design.sync_agent, design.sync_customer), strict=True
        ):
            if name in rows:
                tables.append(_sync_table(name, direction, rows[name]))
        if name in design.proximity:
            tables.append(_proximity_table(name, design.proximity[name], design.turns))
        if _convergence_by_lines(design, name):
            tables.append(_line_table(name, design.lines[name]))
    tables.append(_window_table(design, windows))
    tables.append(_turn_table(design.turns))
    tables += [
        _ipu_table(role, units) for role, units in zip(ROLES, (agent, customer), strict=True)
    ]
    return Evidence(result=result, tables=tuple(tables))


# -- tables -----------------------------------------------------------------------------


def sync_file(name: str, direction: str) -> str:
    return f"synchrony_{name}_{direction}.csv"


def proximity_file(name: str) -> str:
    return f"proximity_{name}.csv"


def convergence_file(name: str) -> str:
    return f"convergence_{name}.csv"


def _convergence_by_lines(design: Design, name: str) -> bool:
    """Whether convergence of ``name`` was tested on the speakers' lines (else: on the
    windows, or not at all), as :func:`~dsp.mirroring.convergence.convergence` decides."""
    if name not in design.rows or name not in design.lines:
        return False
    agent, customer = design.lines[name]
    return (
        agent is not None and customer is not None and line_convergence(agent, customer) is not None
    )


def _summary(result: MirroringResult, design: Design) -> Table:
    rows: list[tuple[Any, ...]] = []
    for f in result.features:
        for direction, designs in zip(
            DIRECTIONS, (design.sync_agent, design.sync_customer), strict=True
        ):
            s = getattr(f, direction)
            kept = designs[f.name].kept if f.name in designs else ()
            covariates = ";".join(SYNC_COVARIATES[j] for j in kept)
            rows.append(
                (f.name, direction, sync_file(f.name, direction), s.n, s.df, covariates,
                 s.r, None, s.p, s.p_adj, s.reason)
            )  # fmt: skip
        rows.append(
            (f.name, "local_proximity", proximity_file(f.name), f.proximity.local_n, None, "",
             None, f.proximity.local_value, f.proximity.local_p, f.proximity.local_p_adj,
             f.proximity.local_reason)
        )  # fmt: skip
        windows = "window_series.csv" if f.name in design.rows else ""
        w = f.windowed
        rows.append(
            (f.name, "windowed_synchrony", windows, w.n, None, "", w.r, w.lag_s, w.p, w.p_adj,
             w.reason)
        )  # fmt: skip
        c = f.convergence
        conv_file = convergence_file(f.name) if _convergence_by_lines(design, f.name) else windows
        rows.append(
            (f.name, "convergence", conv_file, c.n, None, "", None, c.value, c.p, c.p_adj,
             c.reason)
        )  # fmt: skip
    return Table(
        "tests.csv",
        "one row per feature and test: the result as analyze_mirroring returned it (full "
        "precision; the report rounds) and the file of the rows it read",
        (
            ("feature", "", "feature name"),
            (
                "test",
                "",
                "agent_follows_customer / customer_follows_agent (directional "
                "synchrony, the first-named speaker follows), local_proximity, "
                "windowed_synchrony, convergence",
            ),
            (
                "file",
                "",
                "the file of this test's rows (window_series.csv: the window "
                "series it read; convergence_<feature>.csv: each speaker's values its "
                "lines went through; empty: none)",
            ),
            (
                "n",
                "",
                "usable exchanges (directional, local proximity) or windows (windowed "
                "synchrony, convergence)",
            ),
            (
                "df",
                "",
                "directional synchrony: t-test degrees of freedom, n - 2 - (covariates kept)",
            ),
            (
                "covariates",
                "",
                "directional synchrony: the covariate columns kept "
                "(';'-separated; linearly dependent ones are dropped)",
            ),
            (
                "r",
                "",
                "directional: partial correlation; windowed: cross-correlation at the best lag",
            ),
            (
                "value",
                "feature unit, s or per_min",
                "local proximity: mean difference "
                "(feature unit, z for loudness); windowed synchrony: lag_s (s); convergence: "
                "change of distance per minute",
            ),
            ("p", "", "raw two-sided p-value"),
            ("p_adj", "", "p after the call's weighted Benjamini-Hochberg correction"),
            ("reason", "", "why the test has no result (empty when it has one)"),
        ),  # fmt: skip
        tuple(rows),
    )


def _sync_table(name: str, direction: str, d: SyncDesign) -> Table:
    follower, leader = direction.split("_follows_")
    unit = RAW_UNITS[name]
    cols = (
        ("follower_turn", "", "row of turns.csv of the follower's answering turn"),
        ("leader_turn", "", "row of turns.csv of the leader's turn just before"),
        ("follower_start_s", "s", f"start of the {follower}'s answering turn"),
        ("x", unit, f"the {leader}'s (leader's) turn-final value"),
        ("y", unit, f"the {follower}'s (follower's) turn-initial value"),
        (SYNC_COVARIATES[0], unit, f"covariate: the {follower}'s previous turn-final value"),
        (SYNC_COVARIATES[1], unit, f"covariate: mean of the {follower}'s last 4 turn means "
         "(the previous turn included), missing values imputed with the mean over the used "
         "rows; empty on unused rows"),
        ("used", "", "1: the row is one of the test's n exchanges; 0: dropped (x, y or the "
         "previous turn-final value missing)"),
    )  # fmt: skip
    rows = tuple(
        (int(d.follower_turn[i]), int(d.leader_turn[i]), d.start_s[i], d.x[i], d.y[i],
         d.covariates[i, 0], d.covariates[i, 1], int(d.used[i]))
        for i in range(d.y.size)
    )  # fmt: skip
    return Table(
        sync_file(name, direction),
        f"directional synchrony of {name}, {follower} following {leader}: one row per "
        "exchange (the leader's turn, then the follower's answer), in time order",
        cols,
        rows,
    )


def _proximity_table(name: str, d: ProximityRows, turns: Turns) -> Table:
    unit = "z" if name == "loudness" else UNITS[name]
    cols = (
        ("follower", "", "agent or customer: who answers"),
        ("follower_turn", "", "row of turns.csv of the follower's answering turn"),
        ("leader_turn", "", "row of turns.csv of the leader's adjacent turn"),
        ("follower_start_s", "s", "start of the follower's answering turn"),
        ("y", unit, "the follower's turn-initial value (loudness: z-scored per speaker)"),
        ("x_adjacent", unit, "the leader's adjacent turn-final value (likewise)"),
        ("adjacent_similarity", unit, "-|y - x_adjacent|"),
        ("nonadjacent_similarity", unit, "mean of -|y - x_j| over the leader's turns 2 to "
         "proximity_offsets (default 6) turns away on either side that have a value"),
        ("n_nonadjacent", "", "how many non-adjacent leader turns entered that mean"),
        ("diff", unit, "adjacent_similarity - nonadjacent_similarity"),
        ("used", "", "1: one of the test's n differences (the used rows come first, in "
         "the order the t-test and its autocorrelation read them); 0: diff missing"),
    )  # fmt: skip
    rows = tuple(
        (ROLES[int(turns.speaker[d.follower_turn[i]])], int(d.follower_turn[i]),
         int(d.leader_turn[i]), d.start_s[i], d.y[i], d.x[i], d.adjacent[i], d.nonadjacent[i],
         int(d.n_nonadjacent[i]), d.diff[i], int(d.used[i]))
        for i in range(d.diff.size)
    )  # fmt: skip
    return Table(
        proximity_file(name),
        f"local proximity of {name}: one row per exchange, both directions pooled",
        cols,
        rows,
    )


def _line_table(name: str, lines: tuple[SpeakerLine | None, SpeakerLine | None]) -> Table:
    unit = UNITS[name]
    cols: list[Column] = [
        ("speaker", "", "agent or customer"),
        ("start_s", "s", "the value's IPU start (per-turn values: the turn's first IPU)"),
        ("value", unit, f"the speaker's {name}"),
        ("phi", "", "AR(1) coefficient of the speaker's line errors (0: white noise)"),
        ("share", "", "the AR(1) part's share of the error variance"),
    ]
    rows = []
    for role, line in zip(ROLES, lines, strict=True):
        assert line is not None
        for t, v in zip(line.start_s, line.values, strict=True):
            rows.append((role, t, v, line.phi, line.share))
    return Table(
        convergence_file(name),
        f"convergence of {name}: each speaker's finite values in time order, the line "
        "each went through and the persistence its errors were given",
        tuple(cols),
        tuple(rows),
    )


def _window_table(design: Design, windows: WindowSeries) -> Table:
    assert design.centres_s is not None
    starts = np.asarray(windows.starts_s, dtype=np.float64).ravel()
    cols: list[Column] = [
        ("start_s", "s", "window start"),
        ("centre_s", "s", "window centre: the time windowed synchrony and convergence use"),
    ]
    series: list[FloatArray] = [starts, design.centres_s]
    for name in FEATURES:
        if name not in design.rows:
            continue
        unit = "z" if name == "loudness" else UNITS[name]
        for role, row in zip(ROLES, design.rows[name], strict=True):
            note = " (z-scored per speaker)" if name == "loudness" else ""
            cols.append((f"{role}_{name}", unit, f"the {role}'s window value{note}"))
            series.append(row)
    rows = tuple(tuple(s[w] for s in series) for w in range(starts.size))
    return Table(
        "window_series.csv",
        f"both speakers' window series ({windows.window_s:g} s windows every "
        f"{windows.hop_s:g} s) as windowed synchrony and convergence read them; one row per "
        "window",
        tuple(cols),
        rows,
    )


def _turn_table(turns: Turns) -> Table:
    cols: list[Column] = [
        ("turn", "", "row number (0-based), referred to by the other files"),
        ("speaker", "", "agent or customer"),
        ("start_s", "s", "turn start (its first IPU)"),
    ]
    series: list[Any] = [np.arange(turns.speaker.size), [ROLES[s] for s in turns.speaker],
                         turns.start_s]  # fmt: skip
    for name in FEATURES:
        unit = RAW_UNITS[name]
        cols += [
            (f"{name}_initial", unit, "turn-initial value: half the first finite IPU value, "
             "half the turn mean (the turn's value when given per turn)"),
            (f"{name}_final", unit, "turn-final value: likewise with the last finite IPU"),
            (f"{name}_mean", unit, "mean of the turn's finite IPU values"),
        ]  # fmt: skip
        series += [turns.initial[name], turns.final[name], turns.mean[name]]
    rows = tuple(tuple(s[i] for s in series) for i in range(turns.speaker.size))
    return Table(
        "turns.csv",
        "both speakers' turns merged in time order (backchannels are not turns)",
        tuple(cols),
        rows,
    )


def _ipu_table(role: str, units: SpeakerUnits) -> Table:
    start = np.asarray(units.start_s, dtype=np.float64).ravel()
    feats = canonical(units.features)
    cols: list[Column] = [
        ("start_s", "s", "IPU start"),
        ("end_s", "s", "IPU end"),
        ("turn", "", "the speaker's turn label (-1: backchannel, not part of a turn)"),
    ]
    series: list[Any] = [start, np.asarray(units.end_s, dtype=np.float64).ravel(),
                         np.asarray(units.turn_index).ravel()]  # fmt: skip
    for name in FEATURES:
        if name in feats:
            cols.append((name, RAW_UNITS[name], f"the IPU's {name}"))
            series.append(np.asarray(feats[name], dtype=np.float64).ravel())
    rows = tuple(tuple(s[i] for s in series) for i in range(start.size))
    return Table(
        f"ipus_{role}.csv",
        f"the {role}'s inter-pausal units in time order with their per-IPU values",
        tuple(cols),
        rows,
    )


def _cell(value: Any) -> Any:
    """A CSV cell: floats at full precision, missing values empty."""
    if isinstance(value, float):  # most cells (np.float64 too): first, a call has ~10^5
        v = float(value)
        return repr(v) if math.isfinite(v) else ""
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return repr(v) if math.isfinite(v) else ""
    return value


def _readme(tables: Sequence[Table]) -> str:
    lines = [
        "Mirrorline: the evidence behind this call's mirroring statistics.",
        "",
        "Every file is CSV with a header row; floats are written at full precision, missing",
        "values are empty cells. index.csv lists every column of every file with its unit.",
        "tests.csv has each test's result (unrounded) and the file of the rows it read.",
        "What each statistic is: docs/mirroring.md of Mirrorline.",
        "",
        "Recomputing a directional synchrony test (synchrony_<feature>_<direction>.csv):",
        "  take the rows with used = 1 (n of them) and the covariate columns tests.csv",
        "  lists for it (q of them); regress x and y each on [1, covariates] by least",
        "  squares; r is the Pearson correlation of the two residual vectors (the partial",
        "  correlation); t = r * sqrt(df / (1 - r^2)) with df = n - 2 - q, and p is the",
        "  two-sided Student t p-value, 2 * P(T_df > |t|).",
        "",
        "Local proximity (proximity_<feature>.csv): value = mean of diff over the used",
        "rows; its p uses a Bartlett effective sample size (docs/mirroring.md).",
        "",
        "Convergence (convergence_<feature>.csv): per speaker, the GLS line value =",
        "level + slope * (start_s / 60) with error correlation share * phi^k between",
        "values k apart (1 at k = 0); value = the slope difference per minute signed so",
        "that positive = closer; t = value / sqrt(var_agent + var_customer) on",
        "min(n_eff) - 3 degrees of freedom, n_eff = n / (1 + 2 sum_k (1 - k/n) share",
        "phi^k). When tests.csv names window_series.csv instead, the trend of the",
        "window difference was tested (the lines crossed or a speaker had too few values).",
        "",
        "Files:",
    ]
    for t in tables:
        lines.append(f"  {t.name}: {t.about}.")
    lines += [
        "  index.csv: every file's columns with their units.",
        "  README.txt: this text.",
    ]
    return "\n".join(lines) + "\n"
