"""The live page of a stream (``GET /v1/streams/{id}/live``): one HTML file whose small
inline script follows ``/v1/streams/{id}/events`` (EventSource) and draws, per speaker,
who speaks, talk share, pitch, loudness and speaking rate over the last minutes, and the
cues as they fire. No other request: inline CSS and script (allowed by a per-page nonce),
``connect-src 'self'`` for the events only. Pure: a function of the stream id.
"""

from __future__ import annotations

import html
import json
import secrets
from urllib.parse import quote

#: How many events (seconds of audio) the charts keep.
HISTORY = 300

_STYLE = """
body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#111}
h1{font-size:1.2rem;margin:.2rem 0}.muted{color:#555}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(16rem,1fr));gap:1rem}
.card{border:1px solid #ccc;border-radius:6px;padding:.6rem}
.agent{color:#0072b2}.customer{color:#b34700}
.bar{display:flex;height:1.2rem;border-radius:3px;overflow:hidden;background:#eee}
.bar div{width:0}.bar .agent{background:#0072b2}.bar .customer{background:#d55e00}
.dot{display:inline-block;width:.7rem;height:.7rem;border-radius:50%;background:#ccc}
.dot.on{background:#009e73}
svg{width:100%;height:8rem;display:block}
ul#cues{padding-left:1.2rem}li.cue{margin:.2rem 0}
table{border-collapse:collapse}td,th{padding:.1rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}
"""

_SCRIPT = """
const cfg = JSON.parse(document.getElementById('cfg').textContent);
const roles = ['agent', 'customer'];
const keys = ['pitch_hz', 'loudness_db', 'speaking_rate'];
const hist = {t: []};
for (const r of roles) for (const k of keys) hist[r + k] = [];
const $ = (id) => document.getElementById(id);
const fmt = (v, d) => (v === null || v === undefined) ? '\\u2013' : v.toFixed(d);
function draw(key) {
  const svg = $('chart-' + key);
  const vals = roles.flatMap((r) => hist[r + key]).filter((v) => v !== null);
  if (!vals.length || hist.t.length < 2) return;
  const lo = Math.min(...vals), hi = Math.max(...vals), span = (hi - lo) || 1;
  const t0 = hist.t[0], t1 = hist.t[hist.t.length - 1], w = (t1 - t0) || 1;
  svg.replaceChildren();
  for (const r of roles) {
    let d = '', pen = 'M';
    hist[r + key].forEach((v, i) => {
      if (v === null) { pen = 'M'; return; }
      d += pen + ((hist.t[i] - t0) / w * 300).toFixed(1) + ' '
        + (95 - (v - lo) / span * 90).toFixed(1) + ' ';
      pen = 'L';
    });
    const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
    path.setAttribute('d', d);
    path.setAttribute('class', r);
    path.setAttribute('fill', 'none');
    path.setAttribute('stroke', 'currentColor');
    path.setAttribute('stroke-width', '1.5');
    path.setAttribute('vector-effect', 'non-scaling-stroke');
    svg.appendChild(path);
  }
  $('range-' + key).textContent = fmt(lo, 1) + ' \\u2013 ' + fmt(hi, 1);
}
function live(e) {
  hist.t.push(e.t_s);
  for (const r of roles) {
    const s = e.speakers[r];
    for (const k of keys) hist[r + k].push(s[k]);
    $(r + '-speaking').classList.toggle('on', s.speaking);
    $(r + '-pitch').textContent = fmt(s.pitch_hz, 0);
    $(r + '-loud').textContent = fmt(s.loudness_db, 1);
    $(r + '-rate').textContent = fmt(s.speaking_rate, 1);
    $(r + '-talk').textContent = fmt(s.talk_s, 0);
    $('share-' + r).style.width = ((s.talk_share || 0) * 100).toFixed(1) + '%';
  }
  if (hist.t.length > cfg.history) for (const k in hist) hist[k].shift();
  keys.forEach(draw);
  $('clock').textContent = fmt(e.t_s, 0) + ' s';
  const list = $('cues');
  list.replaceChildren();
  for (const c of e.cues) {
    const li = document.createElement('li');
    li.className = 'cue ' + (c.speaker || '');
    li.textContent = c.detail + (c.held_s ? ' (' + c.held_s.toFixed(0) + ' s)' : '');
    list.appendChild(li);
  }
  if (!e.cues.length) list.innerHTML = '<li class="muted">no cue</li>';
  $('thresholds').textContent = JSON.stringify(e.thresholds);
  if (e.mirroring) mirroring(e.mirroring);
}
function mirroring(m) {
  $('mirroring-asof').textContent = '(the first ' + fmt(m.as_of_s, 0) + ' s)';
  const rows = [];
  for (const dim of ['tone', 'tempo']) {
    for (const r of roles) {
      const s = m.scores[dim][r];
      const tr = document.createElement('tr');
      for (const text of [dim, r + ' follows', s ? fmt(s.score, 0) : '\u2013',
                          s ? s.verdict : 'not enough exchanges']) {
        const td = document.createElement('td');
        td.textContent = text;
        tr.appendChild(td);
      }
      rows.push(tr);
    }
  }
  $('mirroring').replaceChildren(...rows);
}
const source = new EventSource(cfg.events);
source.addEventListener('live', (m) => live(JSON.parse(m.data)));
source.addEventListener('end', (m) => {
  const e = JSON.parse(m.data);
  source.close();
  $('state').textContent = 'ended (' + e.end_reason + ')';
  if (e.analysis_url) {
    const a = document.createElement('a');
    a.href = e.analysis_url;
    a.textContent = 'the analysis of the whole call';
    $('state').append(' \\u2013 ', a);
  }
});
source.onerror = () => { if (source.readyState === 2) $('state').textContent = 'disconnected'; };
"""


def _speaker(role: str) -> str:
    return (
        f"<div class='card'><h2 class='{role}'><span class='dot' id='{role}-speaking'></span> "
        f"{role}</h2><table><tr><th>pitch</th><td id='{role}-pitch'>&ndash;</td><td>Hz</td></tr>"
        f"<tr><th>loudness</th><td id='{role}-loud'>&ndash;</td><td>dBFS</td></tr>"
        f"<tr><th>speaking rate</th><td id='{role}-rate'>&ndash;</td><td>syl/s</td></tr>"
        f"<tr><th>talk</th><td id='{role}-talk'>&ndash;</td><td>s</td></tr></table></div>"
    )


def _chart(key: str, title: str) -> str:
    return (
        f"<div class='card'><h3>{title} <span class='muted' id='range-{key}'></span></h3>"
        f"<svg id='chart-{key}' viewBox='0 0 300 100' preserveAspectRatio='none' role='img' "
        f"aria-label='{title} of both speakers over the last {HISTORY} s'></svg></div>"
    )


def render_live_page(stream_id: str, *, token: str | None = None) -> tuple[str, str]:
    """``(html, Content-Security-Policy)`` of the live page of ``stream_id``. ``token`` (the
    key the page was opened with, ``?token=``) is passed on to the events it reads."""
    nonce = secrets.token_urlsafe(16)
    query = "" if token is None else "?token=" + quote(token, safe="")
    cfg = {"events": f"events{query}", "history": HISTORY}
    cfg_json = json.dumps(cfg).replace("<", "\\u003c")
    name = html.escape(stream_id)
    csp = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>Live: {name}</title><style nonce='{nonce}'>{_STYLE}</style></head><body>"
        f"<h1>Live call {name}</h1><p class='muted'><span id='clock'>0 s</span> &middot; "
        "<span id='state'>live</span></p>"
        "<div class='bar' aria-label='talk share'><div class='agent' id='share-agent'></div>"
        "<div class='customer' id='share-customer'></div></div>"
        f"<div class='grid'>{_speaker('agent')}{_speaker('customer')}</div>"
        "<h2>Cues</h2><ul id='cues'><li class='muted'>waiting for audio</li></ul>"
        "<h2>Mirroring so far <span class='muted' id='mirroring-asof'></span></h2>"
        "<table><thead><tr><th>dimension</th><th>who</th><th>score 0-100</th>"
        "<th>verdict</th></tr></thead><tbody id='mirroring'><tr><td class='muted' "
        "colspan='4'>after the first minutes</td></tr></tbody></table>"
        f"<div class='grid'>{_chart('pitch_hz', 'Pitch, Hz')}"
        f"{_chart('loudness_db', 'Loudness, dBFS')}"
        f"{_chart('speaking_rate', 'Speaking rate, syl/s')}</div>"
        "<p class='muted'>Thresholds: <code id='thresholds'></code></p>"
        f"<script type='application/json' id='cfg'>{cfg_json}</script>"
        f"<script nonce='{nonce}'>{_SCRIPT}</script></body></html>"
    )
    return page, csp
