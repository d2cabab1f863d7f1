"""The call report page in headless Chromium (Debian's ``chromium``; skipped without it).

Pages for a short call (the bundled 42 s sample), a long one (60 minutes), a call whose
customer channel is silent, an 8-minute espeak-ng call with a planted follower, and a
batch's index.html are
opened at phone width (390 CSS px) and desktop width (1000 px). Each visit must take a
screenshot, log no console error, attempt no request (every request is intercepted and
refused, DNS resolves nothing, the proxy points nowhere: see tests/chromium.py), and show
the key elements: the summary, charts with text alternatives and captions, the verdict
table, the statistics in a <details>, the warnings, without sideways scrolling on a phone.
Screenshots are written to ``MIRRORLINE_SCREENSHOTS`` when set (to look at them).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.params import AnalysisConfig
from models.report import Report
from service.analysis import analyze_source
from service.report_page import render_report_html
from service.summary import FEATURE_WORDS
from tests.audiofiles import with_silent_channel
from tests.chromium import Browser, require_chromium
from tests.plantedcalls import FOLLOW_CALLS, follow_report
from tests.service.conftest import REPO

SAMPLE = REPO / "samples" / "ami_two_party_8k_ulaw.wav"
WIDTHS = (390, 1000)
CALLS = ("short", "long", "silent", "planted")


def _silent_customer(folder: Path) -> Path:
    return with_silent_channel(SAMPLE, folder / "silent_customer.wav")


def _report(name: str, folder: Path) -> Report:
    if name == "planted":
        return follow_report(*FOLLOW_CALLS[0])
    if name == "long":
        from bench.speed import build_call

        path = build_call(60, folder)
    else:
        path = SAMPLE if name == "short" else _silent_customer(folder)
    return analyze_source(path, AnalysisConfig(), name=path.name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_chromium()
    with Browser() as b:
        yield b


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Report, Path]]:
    require_chromium()
    folder = tmp_path_factory.mktemp("pages")
    out = {}
    for name in CALLS:
        if name == "planted":
            continue  # made on demand: needs espeak-ng
        report = _report(name, folder)
        path = folder / f"{name}.html"
        path.write_text(render_report_html(report), encoding="utf-8")
        out[name] = (report, path)
    return out


def _page(name: str, pages: dict[str, tuple[Report, Path]], folder: Path) -> tuple[Report, Path]:
    if name not in pages:
        report = _report(name, folder)
        path = folder / f"{name}.html"
        path.write_text(render_report_html(report), encoding="utf-8")
        pages[name] = (report, path)
    return pages[name]


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


KEY_ELEMENTS = """(() => {
  const visible = (el) => el.getClientRects().length > 0;
  const charts = [...document.querySelectorAll('figure svg')].filter(visible);
  const labelled = charts.map((svg) => (svg.getAttribute('aria-labelledby') || '')
      .split(' ').map((id) => (document.getElementById(id) || {}).textContent || ''));
  return {
    summary: [...document.querySelectorAll('#summary p')].map(
        (p) => p.textContent.replaceAll('\u00a0', ' ')),
    charts: charts.length,
    chartRoles: charts.map((svg) => svg.getAttribute('role')),
    chartTexts: labelled,
    captions: [...document.querySelectorAll('figure')].map(
        (f) => (f.querySelector('figcaption') || {}).textContent || ''),
    chartWidths: charts.map((svg) => svg.getBoundingClientRect().width),
    verdicts: [...document.querySelectorAll('#verdicts tr')].slice(1).map(
        (tr) => [...tr.children].map((c) => c.textContent.replaceAll('\u00a0', ' '))),
    statistics: document.querySelectorAll('details#statistics table tr').length,
    turnRows: document.querySelectorAll('#turn-taking tr').length,
    warnings: [...document.querySelectorAll('#warnings li')].map((li) => li.textContent),
    scrollWidth: document.documentElement.scrollWidth,
    fontsLoaded: document.fonts.size,
  };
})()"""


def _visit(browser: Browser, name: str, path: Path, width: int) -> dict[str, object]:
    visit = browser.open(path, width=width)
    shots = os.environ.get("MIRRORLINE_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        (Path(shots) / f"{name}-{width}.png").write_bytes(visit.screenshot)
    shot_width, shot_height = _png_size(visit.screenshot)
    assert shot_width == width and shot_height > 1500
    assert visit.errors == [], visit.errors
    assert visit.requests == [], visit.requests
    found: dict[str, object] = browser.evaluate(KEY_ELEMENTS)
    return found


def _check_common(found: dict[str, object], report: Report, width: int) -> None:
    assert found["summary"] == report.summary and 3 <= len(report.summary) <= 6
    assert found["charts"] == 2  # the call timeline and the voice tracks, one size each
    assert found["chartRoles"] == ["img", "img"]
    for title, desc in found["chartTexts"]:  # type: ignore[attr-defined]
        assert title and len(desc) > 80
    assert all(len(c) > 40 for c in found["captions"])  # type: ignore[attr-defined]
    assert all(w > 0.8 * min(width, 832) for w in found["chartWidths"])  # type: ignore[attr-defined]
    assert len(found["verdicts"]) == 7  # type: ignore[arg-type]
    assert found["statistics"] == 8  # header + 7 features
    assert found["turnRows"] == 10  # header + 9 measures
    assert found["scrollWidth"] <= width  # nothing runs off the side of a phone
    assert found["fontsLoaded"] == 0  # no web font


@pytest.mark.parametrize("width", WIDTHS)
def test_short_call_page(browser: Browser, pages: dict, width: int) -> None:
    report, path = pages["short"]
    found = _visit(browser, "short", path, width)
    _check_common(found, report, width)
    assert "too short to tell" in found["summary"][-1]  # type: ignore[index]
    assert any("Telephone-quality" in w for w in found["warnings"])  # type: ignore[attr-defined]


@pytest.mark.parametrize("width", WIDTHS)
def test_long_call_page(browser: Browser, pages: dict, width: int) -> None:
    report, path = pages["long"]
    assert report.audio.duration_s == pytest.approx(3600, abs=1)
    assert path.stat().st_size <= 2_000_000
    found = _visit(browser, "long", path, width)
    _check_common(found, report, width)


@pytest.mark.parametrize("width", WIDTHS)
def test_silent_channel_page(browser: Browser, pages: dict, width: int) -> None:
    report, path = pages["silent"]
    found = _visit(browser, "silent", path, width)
    _check_common(found, report, width)
    assert found["summary"][0].startswith("Only the agent spoke")  # type: ignore[index]
    assert "needs both speakers" in found["summary"][-1]  # type: ignore[index]
    assert any("One channel is silent" in w for w in found["warnings"])  # type: ignore[attr-defined]
    assert all(row[2] == "not measured" for row in found["verdicts"])  # type: ignore[attr-defined]


def test_planted_follower_page(
    browser: Browser, pages: dict, tmp_path_factory: pytest.TempPathFactory
) -> None:
    follower, feature, _ = FOLLOW_CALLS[0]
    report, path = _page("planted", pages, tmp_path_factory.mktemp("planted"))
    found = _visit(browser, "planted", path, 1000)
    _check_common(found, report, 1000)
    rows = {row[0]: row for row in found["verdicts"]}  # type: ignore[attr-defined]
    row = rows[FEATURE_WORDS[feature].capitalize()]
    assert row[1].startswith(f"The {follower} followed") and row[2] == "yes"


@pytest.mark.parametrize("width", WIDTHS)
def test_batch_index_page(browser: Browser, tmp_path: Path, width: int) -> None:
    from tests.service.test_report_page import batch_pages

    out = batch_pages(tmp_path)
    visit = browser.open(out / "index.html", width=width)
    shots = os.environ.get("MIRRORLINE_SCREENSHOTS")
    if shots:
        (Path(shots) / f"batch-{width}.png").write_bytes(visit.screenshot)
    assert _png_size(visit.screenshot)[0] == width
    assert visit.errors == [] and visit.requests == []
    found = browser.evaluate(
        """(() => {
          const svg = [...document.querySelectorAll('figure svg')]
              .filter((el) => el.getClientRects().length > 0);
          return {
            charts: svg.length,
            texts: svg.map((el) => el.getAttribute('aria-labelledby').split(' ')
                .map((id) => document.getElementById(id).textContent)),
            links: [...document.querySelectorAll('#calls a')].map((a) => a.href),
            caption: document.querySelector('figure figcaption').textContent,
            scrollWidth: document.documentElement.scrollWidth,
          };
        })()"""
    )
    assert found["charts"] == 1
    title, desc = found["texts"][0]
    assert title == "Following scores across the calls" and "2 calls" in desc
    assert [Path(link.removeprefix("file://")).relative_to(out).as_posix()
            for link in found["links"]] == ["a/x.html", "b/x.html"]  # fmt: skip
    assert found["caption"] and found["scrollWidth"] <= width


def test_the_browser_check_sees_requests_and_errors(browser: Browser, tmp_path: Path) -> None:
    """The checks above can fail: a page that loads things and logs an error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><head><link rel="stylesheet" href="https://cdn.example/x.css">'
        '</head><body><img src="http://img.example/a.png"><script>console.error("boom")'
        "</script></body></html>"
    )
    visit = browser.open(bad)
    assert set(visit.requests) == {"https://cdn.example/x.css", "http://img.example/a.png"}
    assert set(visit.blocked) == set(visit.requests)
    assert "console.error: boom" in visit.errors
