"""Time and size of the call report page (service.report_page) for a long call.

    python bench/report_page.py                  # 60-minute call, 5 warm renders
    python bench/report_page.py --minutes 10 60 120 --repeats 3 --out page.html

Builds each call the way bench/speed.py does (the bundled real two-party sample looped to
length, 8 kHz mu-law), analyses it once (the report a user would have), then renders the
page: once cold in a fresh process (Python start, imports, matplotlib's first figure: what
`mirrorline analyze --html` adds to the analysis) and ``--repeats`` times warm in this
process (a running server). Prints the page size and the times against the targets
(<= 2 MB, <= 2 s beyond the analysis) and the machine's load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.speed import build_call  # noqa: E402

COLD = """
import sys, time
start = time.perf_counter()
from models.report import Report
from service.report_page import render_report_html
report = Report.model_validate_json(open(sys.argv[1], encoding="utf-8").read())
html = render_report_html(report)
print(time.perf_counter() - start)
"""

MAX_BYTES = 2_000_000
MAX_S = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[60.0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--workdir", default=os.path.join(tempfile.gettempdir(), "mirrorline-bench")
    )
    parser.add_argument("--out", type=Path, help="also write the (last) page here")
    args = parser.parse_args()

    from models.params import AnalysisConfig
    from service.analysis import analyze_source
    from service.report_page import render_report_html

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print("| call | analysis s | page bytes | cold render s | warm render s (median, max) |")
    print("|---|---|---|---|---|")
    html = ""
    for minutes in args.minutes:
        path = build_call(minutes, work)
        start = time.perf_counter()
        report = analyze_source(path, AnalysisConfig(), name=path.name)
        analysis_s = time.perf_counter() - start
        report_json = work / f"{path.stem}.report.json"
        report_json.write_text(report.model_dump_json(), encoding="utf-8")
        cold = subprocess.run(
            [sys.executable, "-c", COLD, str(report_json)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        cold_s = float(cold.stdout.strip())
        warm = []
        for _ in range(max(1, args.repeats)):
            start = time.perf_counter()
            html = render_report_html(report)
            warm.append(time.perf_counter() - start)
        size = len(html.encode("utf-8"))
        flags = "" if size <= MAX_BYTES and cold_s <= MAX_S else "  (over target)"
        print(
            f"| {minutes:g} min | {analysis_s:.1f} | {size:,} ({size / 1e6:.2f} MB) | "
            f"{cold_s:.2f} | {statistics.median(warm):.2f}, {max(warm):.2f} |{flags}"
        )
    if args.out is not None:
        args.out.write_text(html, encoding="utf-8")
    print(f"targets: <= {MAX_BYTES / 1e6:.0f} MB, <= {MAX_S:.0f} s beyond the analysis")


if __name__ == "__main__":
    main()
