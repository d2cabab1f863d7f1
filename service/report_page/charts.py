"""The page's charts: matplotlib figures as inline SVG (no pyplot, no files, no fonts).

Each chart returns one ``<svg>`` element that scales with its container (``viewBox`` only,
no fixed size), keeps its text as text (``svg.fonttype = none``: small, selectable, read by
screen readers), and carries a ``<title>`` and ``<desc>`` referenced by ``aria-labelledby``.
Colours are Okabe-Ito (colour-blind safe), and the two speakers also differ by line style
and marker, so nothing rests on colour alone.
"""

from __future__ import annotations

import io
import math
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from html import escape
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator

from models.report import Report, Window
from service.summary import ROLES, Role, clock, timeline_stretches

#: Okabe & Ito (2008) colours.
AGENT_COLOUR = "#0072B2"  # blue
CUSTOMER_COLOUR = "#D55E00"  # vermillion
TOGETHER_COLOUR = "#009E73"  # bluish green
OVERLAP_COLOUR = "#CC79A7"  # reddish purple
SILENCE_COLOUR = "#999999"
COLOURS: dict[Role, str] = {"agent": AGENT_COLOUR, "customer": CUSTOMER_COLOUR}
STYLES: dict[Role, dict[str, object]] = {
    "agent": {"linestyle": "-", "marker": "o"},
    "customer": {"linestyle": "--", "marker": "s"},
}


@dataclass(frozen=True)
class Layout:
    """A chart's size: each chart is drawn twice, wide for screens, narrow for phones (the
    page shows one by CSS width), so its text stays about 12-14 CSS px on both."""

    name: str
    width_in: float
    timeline_in: float
    tracks_in: float
    legend_cols: int
    max_ticks: int


WIDE = Layout("wide", 8.0, 1.9, 5.4, 3, 8)
NARROW = Layout("narrow", 4.0, 2.1, 6.6, 3, 4)
LAYOUTS = (WIDE, NARROW)
FONT_PT = 10.0

#: The feature panels: (window column, the timeline's key whose stretches are shaded, label);
#: the rate panel shades tempo (speaking and articulation rate, as the summary says it).
TRACKS = (
    ("pitch_median_st", "pitch_level", "Pitch (Hz)"),
    ("loudness_db", "loudness", "Loudness (dB re\nown median)"),
    ("speaking_rate_syl_per_s", "tempo", "Speaking rate\n(syllables/s)"),
)

# rcParams are process-wide: one chart is drawn at a time (a few hundred ms each).
_LOCK = threading.Lock()
_RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": FONT_PT,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": FONT_PT,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "legend.fontsize": FONT_PT - 1,
    "legend.frameon": False,
}


@contextmanager
def _drawing(chart_id: str) -> Iterator[None]:
    with _LOCK, matplotlib.rc_context({**_RC, "svg.hashsalt": chart_id}):  # type: ignore[dict-item]
        yield


def _svg(figure: Figure, chart_id: str, title: str, desc: str) -> str:
    """``figure`` as an accessible, scalable ``<svg>`` element."""
    buffer = io.StringIO()
    FigureCanvasSVG(figure).print_svg(buffer, metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # no XML declaration or DOCTYPE inside HTML
    head_end = text.index(">") + 1
    head = re.sub(r'\s(width|height)="[^"]*"', "", text[:head_end])
    head = head.replace(
        "<svg",
        f'<svg role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'class="chart" id="{chart_id}"',
        1,
    )
    body = re.sub(r"<metadata>.*?</metadata>", "", text[head_end:], flags=re.S)
    return (
        f'{head}<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>{body}'
    )


#: Tick steps of the time axis, s: the first that gives at most the layout's ticks.
TICK_STEPS_S = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600)


def _minutes_axis(ax: Axes, duration_s: float, layout: Layout) -> None:
    duration_s = max(duration_s, 1.0)
    ax.set_xlim(0, duration_s)
    step = next((s for s in TICK_STEPS_S if duration_s / s <= layout.max_ticks), 7200)
    ax.xaxis.set_major_locator(MultipleLocator(step))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: clock(x)))


def _overlaps(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> list:
    """Where segments of ``a`` and ``b`` intersect (both drawn as speaking)."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if end > start:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def call_timeline(report: Report, layout: Layout = WIDE) -> str:
    """Who speaks when: one lane per speaker, where both speak, and the silences."""
    duration = report.audio.duration_s
    segments = {role: getattr(report.segments, role) for role in ROLES}
    both = _overlaps(sorted(segments["agent"]), sorted(segments["customer"]))
    silences = report.conversation.silences
    chart_id = f"call-timeline-{layout.name}"
    with _drawing(chart_id):
        figure = Figure(figsize=(layout.width_in, layout.timeline_in), layout="constrained")
        ax = figure.add_subplot()
        lanes = [("Agent", segments["agent"], AGENT_COLOUR, None)]
        lanes.append(("Customer", segments["customer"], CUSTOMER_COLOUR, None))
        lanes.append(("Both", both, OVERLAP_COLOUR, None))
        for row, (_, spans, colour, _hatch) in enumerate(lanes):
            y = len(lanes) - 1 - row
            ax.broken_barh(
                [(a, max(b - a, duration / 1500)) for a, b in spans],
                (y - 0.35, 0.7),
                facecolors=colour,
                linewidth=0,
            )
        for a, b in silences:
            ax.axvspan(a, b, color=SILENCE_COLOUR, alpha=0.18, linewidth=0)
        ax.set_yticks(range(len(lanes)), [lane[0] for lane in reversed(lanes)])
        ax.set_ylim(-0.6, len(lanes) - 0.4)
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        _minutes_axis(ax, duration, layout)
        ax.set_xlabel("Time in the call (min:s)")
        if silences:
            ax.legend(
                handles=[Patch(color=SILENCE_COLOUR, alpha=0.35, label="silence")],
                loc="upper right",
                bbox_to_anchor=(1, 1.32),
            )
        talk = {role: sum(b - a for a, b in segments[role]) for role in ROLES}
        desc = (
            f"Speech of the agent ({len(segments['agent'])} stretches, {clock(talk['agent'])} "
            f"in all) and the customer ({len(segments['customer'])} stretches, "
            f"{clock(talk['customer'])}) over the {clock(duration)} of the call; both spoke "
            f"at once in {len(both)} places and nobody spoke in {len(silences)} silences of "
            f"{report.conversation.silence_threshold_s:g} s or more."
        )
        return _svg(figure, chart_id, "Who speaks when", desc)


def _values(windows: Sequence[Window], role: Role, column: str) -> list[float]:
    out = []
    for window in windows:
        value = getattr(getattr(window, role), column)
        out.append(math.nan if value is None else float(value))
    if column == "pitch_median_st":  # semitones re 100 Hz -> Hz, the unit people know
        out = [100.0 * 2.0 ** (v / 12.0) for v in out]
    if column == "loudness_db":  # channel gains differ: each speaker re their own median
        finite = sorted(v for v in out if math.isfinite(v))
        if finite:
            median = finite[len(finite) // 2]
            out = [v - median for v in out]
    return out


def feature_tracks(report: Report, layout: Layout = WIDE) -> str:
    """Both speakers' pitch, loudness and speaking rate per window on one clock, with the
    stretches where the feature's rolling correlation held (``timeline_stretches``)."""
    windows = report.windows
    centres = [(w.start_s + w.end_s) / 2 for w in windows]
    timeline = report.mirroring.timeline if report.mirroring is not None else []
    shaded: list[str] = []
    chart_id = f"feature-tracks-{layout.name}"
    with _drawing(chart_id):
        figure = Figure(figsize=(layout.width_in, layout.tracks_in), layout="constrained")
        axes = figure.subplots(len(TRACKS), 1, sharex=True)
        for ax, (column, feature, label) in zip(axes, TRACKS, strict=True):
            together = [s for s in timeline_stretches(timeline, feature) if s.together]
            for stretch in together:
                ax.axvspan(
                    stretch.start_s,
                    stretch.end_s,
                    color=TOGETHER_COLOUR,
                    alpha=0.18,
                    linewidth=0,
                )
            if together:
                spans = ", ".join(f"{clock(s.start_s)}-{clock(s.end_s)}" for s in together)
                shaded.append(f"{label.split(' (')[0].replace(chr(10), ' ')}: {spans}")
            for role in ROLES:
                ax.plot(
                    centres,
                    _values(windows, role, column),
                    color=COLOURS[role],
                    linewidth=1.6,
                    markersize=3.5 if len(windows) <= 60 else 0,
                    label=role.capitalize(),
                    **STYLES[role],
                )
            ax.set_ylabel(label)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        _minutes_axis(axes[-1], report.audio.duration_s, layout)
        axes[-1].set_xlabel("Time in the call (min:s)")
        handles, labels = axes[0].get_legend_handles_labels()
        handles.append(Patch(color=TOGETHER_COLOUR, alpha=0.3, label="moved together"))
        figure.legend(
            handles=handles,
            labels=[*labels, "moved together"],
            loc="outside upper center",
            ncols=layout.legend_cols,
        )
        window_s = report.config.window_s
        desc = (
            f"Each speaker's median pitch, loudness and speaking rate in {window_s:g}-second "
            f"windows every {report.config.hop_s:g} s over the {clock(report.audio.duration_s)}"
            " of the call (agent solid with circles, customer dashed with squares; gaps where "
            "a speaker said too little). Shaded: stretches where the two moved together "
            "(rolling correlation 0.5 or more): " + ("; ".join(shaded) if shaded else "none") + "."
        )
        return _svg(figure, chart_id, "Pitch, loudness and speaking rate", desc)


#: Most calls the batch chart draws one row each for; more get a histogram per score.
BATCH_ROWS_MAX = 60
#: The batch chart's four scores: (dimension, follower, marker, colour, label).
BATCH_SCORES = (
    ("tone", "agent", "o", AGENT_COLOUR, "agent follows customer, tone"),
    ("tempo", "agent", "s", AGENT_COLOUR, "agent follows customer, tempo"),
    ("tone", "customer", "^", CUSTOMER_COLOUR, "customer follows agent, tone"),
    ("tempo", "customer", "D", CUSTOMER_COLOUR, "customer follows agent, tempo"),
)


def batch_scores(reports: Sequence[tuple[str, Report]], layout: Layout = WIDE) -> str:
    """Every call's four following scores (0-100) side by side: one row per call (a dot per
    score), or with many calls a histogram of each score."""
    names = [name for name, _ in reports]
    values: dict[str, list[float]] = {}
    for dimension, role, _, _, label in BATCH_SCORES:
        column = []
        for _, report in reports:
            pair = getattr(report.mirroring.scores, dimension) if report.mirroring else None
            score = getattr(pair, role) if pair is not None else None
            column.append(math.nan if score is None else float(score.score))
        values[label] = column
    chart_id = f"batch-scores-{layout.name}"
    rows = len(names) <= BATCH_ROWS_MAX
    narrow = layout is NARROW
    with _drawing(chart_id):
        height = (1.9 if narrow else 1.4) + 0.26 * len(names) if rows else 3.2
        figure = Figure(figsize=(layout.width_in, height), layout="constrained")
        ax = figure.add_subplot()
        if rows:
            for k, (_, _, marker, colour, label) in enumerate(BATCH_SCORES):
                offset = (k - 1.5) * 0.16
                ax.plot(
                    values[label],
                    [i + offset for i in range(len(names))],
                    linestyle="none",
                    marker=marker,
                    color=colour,
                    markerfacecolor=colour if k % 2 == 0 else "white",
                    markersize=6,
                    label=label,
                )
            ax.set_yticks(range(len(names)), [_short(n, 14 if narrow else 32) for n in names])
            ax.set_ylim(len(names) - 0.5, -0.5)
            ax.grid(axis="x", color="#dddddd", linewidth=0.6)
            ax.set_xlim(-3, 103)
        else:
            bins = [5.0 * k for k in range(21)]  # 0-100 in steps of 5
            for _, role, _, colour, label in BATCH_SCORES:
                ax.hist(
                    [v for v in values[label] if math.isfinite(v)],
                    bins=bins,
                    histtype="step",
                    color=colour,
                    linestyle="--" if role == "customer" else "-",
                    linewidth=1.6 if "tone" in label else 2.6,
                    label=label,
                )
            ax.set_ylabel("Calls")
        ax.set_xlabel(
            "Following score (0-100)"
            if narrow
            else "Following score (0 = no more than chance; 30 = at least r = 0.3)"
        )
        figure.legend(loc="outside upper center", ncols=1 if narrow else 2)
        above = {
            label: sum(1 for v in column if math.isfinite(v) and v > 0)
            for label, column in values.items()
        }
        desc = (
            f"Following scores of {len(names)} calls"
            + (", one row per call" if rows else ", as histograms")
            + ". Calls scoring above 0: "
            + "; ".join(f"{label} {n}" for label, n in above.items())
            + "."
        )
        return _svg(figure, chart_id, "Following scores across the calls", desc)


def _short(name: str, limit: int = 32) -> str:
    return name if len(name) <= limit else "…" + name[-(limit - 1) :]
