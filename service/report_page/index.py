"""The batch overview page (``index.html`` beside a batch's reports): every call with a
link to its own page, its key numbers, and the calls' following scores side by side.

Self-contained like the call page (inline CSS and SVG, no script, CSP ``default-src
'none'``); its only links are relative ones to the calls' pages, followed when clicked.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import quote

from models.report import Report
from service.report_page import charts
from service.report_page.page import CSP, STYLE
from service.summary import FEATURE_WORDS, duration_words


def _scores(report: Report, role: str) -> str:
    """``tone / tempo`` scores of ``role`` following the other."""
    if report.mirroring is None:
        return "–"
    out = []
    for dimension in ("tone", "tempo"):
        score = getattr(getattr(report.mirroring.scores, dimension), role)
        out.append("–" if score is None else f"{score.score:.0f}")
    return " / ".join(out)


def _mirrored(report: Report) -> str:
    if report.mirroring is None:
        return "not measured"
    found = []
    for name, feature in report.mirroring.features.items():
        if feature.mirrored:
            who = f" ({feature.follower} followed)" if feature.follower else ""
            found.append(f"{FEATURE_WORDS[name]}{who}")
    return "; ".join(found) if found else "none shown"


def _row(name: str, page: str, report: Report) -> str:
    agent = report.speakers.agent.talk_ratio
    cells = [
        duration_words(report.audio.duration_s),
        "–" if agent is None else f"{100 * agent:.0f} %",
        _scores(report, "agent"),
        _scores(report, "customer"),
    ]
    numbers = "".join(f'<td class="num nowrap">{escape(c)}</td>' for c in cells)
    warnings = ", ".join(w.code for w in report.warnings) or "–"
    return (
        f'<tr><th scope="row"><a href="{escape(quote(page))}">{escape(name)}</a></th>'
        f"{numbers}<td>{escape(_mirrored(report))}</td>"
        f'<td class="wide small">{escape(warnings)}</td></tr>'
    )


INDEX_STYLE = ".nowrap{white-space:nowrap}.small{font-size:.8rem;overflow-wrap:anywhere}"

HEAD = (
    "<tr><th>Call (its page)</th><th class='num'>Length</th><th class='num'>Agent talk</th>"
    "<th class='num agent'>Agent follows: tone / tempo</th>"
    "<th class='num customer'>Customer follows: tone / tempo</th>"
    "<th>Mirrored (who followed)</th><th class='wide'>Warnings</th></tr>"
)


def render_batch_index(calls: Sequence[tuple[str, str, Report]]) -> str:
    """The overview of a batch: ``calls`` are ``(name, page, report)``, ``name`` the
    recording as given, ``page`` its page's path relative to the index."""
    rows = "".join(_row(name, page, report) for name, page, report in calls)
    total = sum(report.audio.duration_s for _, _, report in calls)
    named = [(name, report) for name, _, report in calls]
    chart = "".join(
        f'<div class="{layout.name}">{charts.batch_scores(named, layout)}</div>'
        for layout in charts.LAYOUTS
    )
    body = (
        f"<header><h1>{len(calls)} calls</h1><p class='meta'>"
        f"{escape(duration_words(total))} in all; each call's own page is linked below.</p>"
        "</header>"
        '<section aria-labelledby="h-calls"><h2 id="h-calls">The calls</h2>'
        f'<div class="scroll"><table id="calls">{HEAD}{rows}</table></div>'
        "<p class='meta'>Scores 0-100: 0 means chance could explain it; above 0 following is "
        "shown and at least that strong (30 = at least a correlation of 0.3).</p></section>"
        '<section aria-labelledby="h-across"><h2 id="h-across">Across the calls</h2>'
        f'<figure id="fig-batch">{chart}<figcaption>Each call\'s four following scores: '
        "agent following the customer (blue) and customer following the agent (orange), in "
        "tone (filled) and tempo (open). Calls with every score at 0 showed no following "
        "beyond chance.</figcaption></figure></section>"
        "<footer>Mirrorline batch overview. This page makes no network request.</footer>"
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Mirrorline: {len(calls)} calls</title><style>{STYLE}{INDEX_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
