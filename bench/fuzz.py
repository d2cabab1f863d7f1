"""Every malformed input of ``tests/fuzzcases.py`` (>= 1,000) through the CLI and the HTTP
service: 0 tracebacks, 0 5xx, 0 hangs over 60 s, every CLI failure exit 2 with one
``error: <code>: ...`` line. CI runs a bounded sample (tests/service/test_fuzz.py); this
runs all.

    python bench/fuzz.py                 # all cases, CLI and HTTP (about 2 min on 2 cores)
    python bench/fuzz.py --only cli      # or http
    python bench/fuzz.py --seed 7 --per-base 60

Exit status 0 when nothing was wrong, 1 otherwise (the findings are listed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, TimeoutError
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fuzzcases import DEFAULT_SEED, MUTATIONS_PER_BASE, Case, cases, cli_verdict  # noqa: E402

HANG_S = 60.0


def run_cli(all_cases: list[tuple[Case, Path]], workers: int) -> list[str]:
    """Each case through ``mirrorline analyze`` in a pool (a case over HANG_S is a hang)."""
    findings: list[str] = []
    pool = ProcessPoolExecutor(workers)
    try:
        futures = [(case, pool.submit(cli_verdict, str(path))) for case, path in all_cases]
        for case, future in futures:
            try:
                verdict = future.result(timeout=HANG_S)
            except TimeoutError:
                verdict = f"hang: no answer in {HANG_S:.0f} s"
            if verdict is not None:
                findings.append(f"cli {case.name}: {verdict}")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return findings


def run_http(all_cases: list[tuple[Case, Path]], data_dir: Path) -> list[str]:
    """Each case to POST /v1/analyze of a real server; every 25th also as a job."""
    import httpx

    from tests.fuzzcases import http_verdict
    from tests.service.conftest import Server

    findings: list[str] = []
    server = Server(data_dir, {"MIRRORLINE_WORKERS": "2", "MIRRORLINE_MAX_QUEUE": "1000"})
    server.start()
    jobs: list[tuple[str, str]] = []
    try:
        with server.client(timeout=HANG_S) as client:
            for i, (case, _) in enumerate(all_cases):
                files = {"file": (f"{case.name}{case.suffix}", case.data)}
                try:
                    verdict = http_verdict(client.post("/v1/analyze", files=files))
                except httpx.TimeoutException:
                    verdict = f"hang: no answer in {HANG_S:.0f} s"
                except httpx.HTTPError as exc:
                    verdict = f"{exc.__class__.__name__}: {exc}"
                if verdict is not None:
                    findings.append(f"http {case.name}: {verdict}")
                if i % 25 == 0:
                    created = client.post("/v1/analyses", files=files)
                    if created.status_code == 202:
                        jobs.append((case.name, created.json()["id"]))
                    elif (verdict := http_verdict(created)) is not None:
                        findings.append(f"job {case.name}: {verdict}")
            deadline = time.monotonic() + 600
            for name, job_id in jobs:
                while True:
                    job = client.get(f"/v1/analyses/{job_id}").json()
                    if job["status"] in ("completed", "failed") or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
                if job["status"] not in ("completed", "failed"):
                    findings.append(f"job {name}: still {job['status']}")
                elif job["status"] == "failed" and job["error"]["code"] in ("internal",):
                    findings.append(f"job {name}: failed {job['error']}")
    finally:
        server.stop()
    log = server.log()
    for marker in ("Traceback", "unhandled error", '"level": "ERROR"'):
        if marker in log:
            findings.append(f"server log holds {marker!r}")
    return findings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--per-base", type=int, default=MUTATIONS_PER_BASE)
    parser.add_argument("--only", choices=("cli", "http"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        written = []
        for i, case in enumerate(cases(args.seed, args.per_base)):
            path = folder / f"{i:05d}{case.suffix}"
            path.write_bytes(case.data)
            written.append((case, path))
        print(f"{len(written)} cases (seed {args.seed})", flush=True)
        findings: list[str] = []
        if args.only in (None, "cli"):
            findings += run_cli(written, args.workers)
            print(f"cli done: {len(findings)} findings, {time.perf_counter() - started:.0f} s")
        if args.only in (None, "http"):
            findings += run_http(written, folder / "server-data")
            print(f"http done: {len(findings)} findings, {time.perf_counter() - started:.0f} s")
    for finding in findings:
        print(finding)
    print(f"{len(findings)} findings in {time.perf_counter() - started:.0f} s")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
