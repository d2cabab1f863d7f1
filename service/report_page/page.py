"""The call report page: one self-contained HTML document from a :class:`Report`.

No network request of any kind: styles are inline, charts are inline SVG
(``service.report_page.charts``), there is no script, and a Content-Security-Policy of
``default-src 'none'`` makes a browser refuse anything else. Every text from the report is
escaped (``html.escape``); the words come from ``service.summary``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from html import escape

from models.report import FeatureMirroring, Mirroring, Report, Speaker
from service.report_page import charts
from service.summary import (
    DIMENSION_WORDS,
    FEATURE_WORDS,
    ROLES,
    clock,
    duration_words,
    feature_verdict,
)

CSP = "default-src 'none'; style-src 'unsafe-inline'"

#: Warnings in plain words (the report's own message follows in small print).
WARNING_WORDS = {
    "channels.identical": "Both channels carry the same sound (fake stereo). Turn-taking and "
    "mirroring need each person on their own channel, so they are not meaningful here.",
    "channel.silent": "One channel is silent or nearly so: only one person can be measured.",
    "channel.heavy_bleed": "One person's voice leaks strongly into the other's channel, so "
    "who spoke when is less certain.",
    "audio.clipping": "The recording is clipped (too loud): pitch and loudness may be off.",
    "audio.narrowband": "Telephone-quality sound: fine for this analysis, nothing above 4 kHz.",
    "audio.truncated": "The file seems cut short: this report covers only what was received.",
    "mirroring.low_power": "The call is too short to show anything but strong mirroring: "
    "'not shown' here does not mean it did not happen.",
}

STYLE = """
/* Okabe-Ito colours; text in the customer's colour is a darker vermillion (>= 4.5:1 on
   white), text on it black */
:root{--agent:#0072B2;--customer:#D55E00;--customer-text:#A33F00;--together:#009E73;
--ink:#1b1b1b;--muted:#5a5a5a;--line:#d9d9d9;--bg:#ffffff;--soft:#f4f6f8}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
main{max-width:52rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.2rem 0;overflow-wrap:anywhere}
h2{font-size:1.2rem;margin:2rem 0 .5rem;border-bottom:1px solid var(--line)}
.meta{color:var(--muted);margin:0}
.summary{background:var(--soft);border-left:4px solid var(--together);padding:.6rem 1rem}
.summary p{margin:.4rem 0}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);
vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto}
figure{margin:0}
figcaption{color:var(--muted);font-size:.9rem;margin-top:.3rem}
svg.chart{width:100%;height:auto;display:block}
.agent{color:var(--agent);font-weight:600}
.customer{color:var(--customer-text);font-weight:600}
.bar{display:flex;height:1.4rem;border-radius:3px;overflow:hidden;margin:.3rem 0 .8rem}
.bar span{display:block;height:100%;color:#fff;font-size:.8rem;line-height:1.4rem;
padding-left:.3rem;white-space:nowrap;overflow:hidden}
.bar .a{background:var(--agent)}
.bar .c{background:var(--customer);color:#000}
.badge{display:inline-block;padding:0 .4rem;border-radius:3px;font-size:.8rem;
border:1px solid currentColor;white-space:nowrap}
.badge.yes{color:#00664d}
.badge.no{color:var(--muted)}
details{margin-top:1rem}
summary{cursor:pointer;font-weight:600}
details table{font-size:.85rem}
.warnings li{margin:.4rem 0}
.warnings small{color:var(--muted);display:block}
footer{color:var(--muted);font-size:.8rem;margin:2rem 0 1rem}
.narrow{display:none}
@media (max-width:40rem){main{padding:.6rem}body{font-size:15px}
th,td{padding:.3rem .3rem}.wide{display:none}.narrow{display:block}}
"""


def text_html(text: str) -> str:
    """Report words as HTML: escaped, with ``r = 0.54`` and ``p < 0.0001`` kept on one line."""
    html = escape(text)
    for op in (" = ", " &lt; "):
        html = html.replace(op, op.replace(" ", "\u00a0"))
    return html


def _num(value: float | None, fmt: str = ".2f", unit: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:{fmt}}{unit}"


def _seconds(value: float | None) -> str:
    return "–" if value is None else duration_words(value) if value >= 60 else f"{value:.1f} s"


def _role_head(extra: str = "", heads: Sequence[str] = ("Agent", "Customer")) -> str:
    return (
        f"<tr><th>{extra}</th>"
        + "".join(f'<th class="num {r}">{h}</th>' for r, h in zip(ROLES, heads, strict=True))
        + "</tr>"
    )


def _rows(rows: Iterable[tuple[str, Sequence[str]]]) -> str:
    return "".join(
        f"<tr><th scope='row'>{escape(label)}</th>"
        + "".join(f'<td class="num">{escape(cell)}</td>' for cell in cells)
        + "</tr>"
        for label, cells in rows
    )


def _per_speaker(report: Report, cell: Callable[[Speaker], str]) -> list[str]:
    return [cell(getattr(report.speakers, role)) for role in ROLES]


def _header(report: Report) -> str:
    name = report.source or "call"
    return (
        f"<header><h1>Call report: {escape(name)}</h1>"
        f'<p class="meta">{escape(duration_words(report.audio.duration_s))} · agent on '
        f"channel {report.roles.agent_channel}, customer on channel "
        f"{report.roles.customer_channel} · {report.audio.sample_rate_hz} Hz "
        f"{escape(report.audio.codec)}</p></header>"
    )


def _summary(report: Report) -> str:
    sentences = "".join(f"<p>{text_html(s)}</p>" for s in report.summary)
    return (
        '<section aria-labelledby="h-summary"><h2 id="h-summary">In brief</h2>'
        f'<div class="summary" id="summary">{sentences}</div></section>'
    )


def _talk_bar(report: Report) -> str:
    agent, customer = report.speakers.agent.talk_ratio, report.speakers.customer.talk_ratio
    if agent is None or customer is None:
        return ""
    a, c = 100 * agent, 100 * customer
    spans = "".join(
        f'<span class="{cls}" style="width:{share:.1f}%">{name} {share:.0f} %</span>'
        for cls, name, share in (("a", "Agent", a), ("c", "Customer", c))
        if share > 0
    )
    label = f"Talk share: agent {a:.0f} %, customer {c:.0f} %"
    return f'<div class="bar" role="img" aria-label="{label}">{spans}</div>'


def _turn_taking(report: Report) -> str:
    conv = report.conversation

    rows = [
        ("Talk share", _per_speaker(report, lambda s: _num(s.talk_ratio, ".0%"))),
        ("Talk time", _per_speaker(report, lambda s: _seconds(s.talk_time_s))),
        ("Turns", _per_speaker(report, lambda s: str(s.turns))),
        ("Longest monologue", _per_speaker(report, lambda s: _seconds(s.longest_monologue_s))),
        ("Patience: pause before answering (median)", _per_speaker(
            report, lambda s: _num(s.response_latency_median_s, ".2f", " s"))),
        ("… its slowest tenth (90th percentile)", _per_speaker(
            report, lambda s: _num(s.response_latency_p90_s, ".2f", " s"))),
        ("Interruptions (took the floor in overlap)", _per_speaker(
            report, lambda s: str(s.interruptions))),
        ("Backchannels (mm-hmm, yeah)", _per_speaker(report, lambda s: str(s.backchannels))),
        ("Median pause inside a turn", _per_speaker(report, lambda s: _seconds(s.median_pause_s))),
    ]  # fmt: skip
    swaps = _num(conv.switches_per_min, ".1f", " floor changes a minute")
    return (
        '<section aria-labelledby="h-turns"><h2 id="h-turns">Turn-taking at a glance</h2>'
        f"{_talk_bar(report)}"
        f'<div class="scroll"><table id="turn-taking">{_role_head()}{_rows(rows)}</table></div>'
        f'<p class="meta">{escape(swaps)}; both spoke at once for {conv.overlap_s:.1f} s; '
        f"{len(conv.silences)} silences of {conv.silence_threshold_s:g} s or more.</p></section>"
    )


def _figure(
    chart: Callable[[Report, charts.Layout], str],
    report: Report,
    caption: str,
    section_id: str,
    title: str,
) -> str:
    """A section with the chart drawn wide and narrow (CSS shows the one that fits)."""
    svgs = "".join(
        f'<div class="{layout.name}">{chart(report, layout)}</div>' for layout in charts.LAYOUTS
    )
    return (
        f'<section aria-labelledby="h-{section_id}"><h2 id="h-{section_id}">{escape(title)}'
        f'</h2><figure id="fig-{section_id}">{svgs}<figcaption>{escape(caption)}'
        "</figcaption></figure></section>"
    )


def _verdicts(mirroring: Mirroring | None) -> str:
    head = (
        '<section aria-labelledby="h-verdicts">'
        '<h2 id="h-verdicts">Mirroring, feature by feature</h2>'
    )
    if mirroring is None:
        return head + "<p>Mirroring was not measured for this call.</p></section>"
    rows = []
    for name, feature in mirroring.features.items():
        badge = _badge(feature)
        rows.append(
            f"<tr><th scope='row'>{escape(FEATURE_WORDS[name].capitalize())}</th>"
            f"<td>{text_html(feature_verdict(mirroring, name))}</td><td>{badge}</td></tr>"
        )
    return (
        f'{head}<div class="scroll"><table id="verdicts"><tr><th>Feature</th><th>What the call '
        f"shows</th><th>Mirrored</th></tr>{''.join(rows)}</table></div>"
        f"{_scores(mirroring)}{_statistics(mirroring)}</section>"
    )


def _badge(feature: FeatureMirroring) -> str:
    if feature.mirrored is None:
        return '<span class="badge no">not measured</span>'
    if feature.mirrored:
        return '<span class="badge yes">yes</span>'
    return '<span class="badge no">not shown</span>'


SCORE_HEADS = ("Agent followed customer", "Customer followed agent")


def _scores(mirroring: Mirroring) -> str:
    rows = []
    for dimension in ("tone", "tempo"):
        pair = getattr(mirroring.scores, dimension)
        cells = []
        for role in ROLES:
            score = getattr(pair, role)
            cells.append("–" if score is None else f"{score.score:.0f} ({score.verdict})")
        rows.append((DIMENSION_WORDS[dimension].capitalize(), cells))
    return (
        "<h3>Scores: how strongly each followed the other (0-100)</h3>"
        f'<div class="scroll"><table id="scores">{_role_head("", SCORE_HEADS)}{_rows(rows)}'
        "</table></div><p class='meta'>0 means chance could explain it; above 0, following is "
        "shown and at least that strong (30 = at least a moderate correlation of 0.3).</p>"
    )


STAT_COLUMNS = (
    "feature",
    "agent follows: r",
    "p_adj",
    "r_needed",
    "customer follows: r",
    "p_adj",
    "r_needed",
    "windowed r",
    "lag s",
    "p_adj",
    "convergence /min",
    "direction",
    "p_adj",
    "agent moved [95 % CI]",
    "customer moved [95 % CI]",
    "local proximity",
    "p_adj",
)


def _ci(value: float | None, ci: tuple[float, float] | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f}" + ("" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]")


def _p(value: float | None) -> str:
    return "–" if value is None else f"{value:.2g}"


def _statistics(mirroring: Mirroring) -> str:
    rows = []
    for name, f in mirroring.features.items():
        a, c, w = (
            f.synchrony.agent_follows_customer,
            f.synchrony.customer_follows_agent,
            (f.synchrony.windowed),
        )
        cv, local = f.convergence, f.proximity["local"]
        cells = [
            name, _num(a.r), _p(a.p_adj), _num(a.r_needed), _num(c.r), _p(c.p_adj),
            _num(c.r_needed), _num(w.r), _num(w.lag_s, ".0f"), _p(w.p_adj), _num(cv.value, ".3f"),
            cv.direction or "–", _p(cv.p_adj), _ci(cv.agent_moved, cv.agent_moved_ci),
            _ci(cv.customer_moved, cv.customer_moved_ci), _num(local.value, ".3f"),
            _p(local.p_adj),
        ]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{escape(x)}</td>" for x in cells) + "</tr>")
    head = "".join(f"<th>{escape(c)}</th>" for c in STAT_COLUMNS)
    facts = (
        f"{mirroring.n_exchanges} exchanges, {mirroring.n_windows} windows, "
        f"{mirroring.n_shams} sham partners; {mirroring.correction} at alpha = "
        f"{mirroring.alpha:g}; detectable r = {_num(mirroring.detectable_r)}."
    )
    return (
        '<details id="statistics"><summary>The statistics (for researchers)</summary>'
        f"<p class='meta'>{escape(facts)} Definitions: docs/mirroring.md; every field: "
        "docs/report.md.</p>"
        f'<div class="scroll"><table>{"<tr>" + head + "</tr>"}{"".join(rows)}</table></div>'
        "</details>"
    )


def _verbal(report: Report) -> str:
    """Echoes per speaker, their examples, and lexical mirroring (only when measured)."""
    verbal = report.verbal
    if verbal is None:
        return ""
    speakers = [getattr(verbal.speakers, role) for role in ROLES]
    table = (
        "<table>"
        + _role_head()
        + _rows(
            [
                ("Echoes of the partner's last words", [str(v.echoes) for v in speakers]),
                ("of them echo questions", [str(v.echo_questions) for v in speakers]),
                (
                    "per 10 partner turns",
                    [_num(v.echoes_per_10_partner_turns, ".1f") for v in speakers],
                ),
                ("words recognised", [str(v.words) for v in speakers]),
            ]
        )
        + "</table>"
    )
    examples = "".join(
        f"<li>{escape(role)} at {escape(clock(e.start_s))}: "
        f"{escape(', '.join(e.words))}{' (question)' if e.question else ''}</li>"
        for role, v in zip(ROLES, speakers, strict=True)
        for e in v.examples
    )
    lex = verbal.lexical
    lexical = (
        f"Answers shared {_num(lex.adjacent, '.0%')} of their content words with the turn just "
        f"heard and {_num(lex.nonadjacent, '.0%')} with the partner's other nearby turns "
        f"({_p(lex.p)}, {lex.n} exchanges)."
        if lex.difference is not None
        else f"Lexical mirroring not measured: {lex.reason}."
    )
    rec = verbal.recognizer
    return (
        '<section aria-labelledby="h-verbal"><h2 id="h-verbal">Words</h2>'
        f"{table}<p>{text_html(lexical)}</p>"
        + (f'<ul id="echoes">{examples}</ul>' if examples else "")
        + f"<p><small>Words recognised by {escape(rec.engine)} {escape(rec.version)} "
        f"({escape(rec.language)}); many are wrong on telephone audio (docs/verbal.md).</small>"
        "</p></section>"
    )


def _warnings(report: Report) -> str:
    if not report.warnings:
        items = "<li>None: the recording looks fine for this analysis.</li>"
    else:
        items = "".join(
            f"<li>{escape(WARNING_WORDS.get(w.code, w.message))}"
            f"<small>{escape(w.code)}: {escape(w.message)}</small></li>"
            for w in report.warnings
        )
    return (
        '<section aria-labelledby="h-warnings"><h2 id="h-warnings">Warnings</h2>'
        f'<ul class="warnings" id="warnings">{items}</ul></section>'
    )


def render_report_html(report: Report) -> str:
    """The report as one self-contained HTML page (summary, turn-taking, call timeline,
    pitch / loudness / rate over the call, verdicts per feature, warnings)."""
    length = clock(report.audio.duration_s)
    timeline = _figure(
        charts.call_timeline,
        report,
        f"Who speaks when over the {length} of the call: agent (blue), customer (orange), "
        "both at once (purple), silences shaded grey. Interruptions are counted in the table "
        "above.",
        "timeline",
        "The call",
    )
    tracks = _figure(
        charts.feature_tracks,
        report,
        f"Each speaker's pitch, loudness (relative to their own median: channel levels differ) "
        f"and speaking rate per {report.config.window_s:g}-second window. Green shading: "
        "stretches where the two moved together (descriptive rolling correlation 0.5 or more).",
        "tracks",
        "Voice over the call",
    )
    title = f"Call report: {report.source or 'call'}"
    body = "".join(
        [
            _header(report),
            _summary(report),
            _turn_taking(report),
            timeline,
            tracks,
            _verdicts(report.mirroring),
            _verbal(report),
            _warnings(report),
            f"<footer>Mirrorline analysis {escape(report.analysis_version)}, report schema "
            f"{escape(report.schema_version)}. This page makes no network request.</footer>",
        ]
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
