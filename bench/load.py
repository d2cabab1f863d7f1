"""Load test: N concurrent uploads of a 6-minute stereo call to a Mirrorline server.

    python bench/load.py                       # starts its own server (WORKERS=2) on 127.0.0.1
    python bench/load.py --url http://127.0.0.1:8000 --api-key KEY
    python bench/load.py --mode jobs -n 16     # POST /v1/analyses then poll, instead of sync

Reports throughput, p50/p95 latency, answers by status (and any 5xx other than 503 with
Retry-After, which is the target's only failure), and the server's peak RSS including its
worker processes (psutil if installed, else /proc). Only talks to 127.0.0.1 or --url.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "ami_two_party_8k_ulaw.wav"


def build_call(path: Path, duration_s: float) -> None:
    """Loop the repo's real two-party sample (or a synthetic call) to ``duration_s``."""
    if SAMPLE.exists():
        samples, rate = sf.read(SAMPLE, dtype="float32", always_2d=True)
    else:
        sys.path.insert(0, str(REPO))
        from tests.service.audio import call_samples

        rate = 8000
        samples = call_samples(60.0)
    repeats = int(np.ceil(duration_s * rate / len(samples)))
    looped = np.tile(samples, (repeats, 1))[: int(duration_s * rate)]
    sf.write(path, looped, rate, subtype="PCM_16")


def _tree_rss_bytes(pid: int) -> int:
    try:
        import psutil

        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs if p.is_running())
    except ImportError:
        pass
    except Exception:
        return 0
    total = 0
    pids = {pid}
    for entry in Path("/proc").iterdir():  # children by parent pid, one level is enough
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == pid:
                    pids.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class RssWatcher(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.peak = max(self.peak, _tree_rss_bytes(self.pid))


def start_server(data_dir: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIRRORLINE_")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "MIRRORLINE_DATA_DIR": str(data_dir),
            "MIRRORLINE_WORKERS": str(workers),
            "MIRRORLINE_LOG_LEVEL": "WARNING",
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit("the server exited during start-up")
        time.sleep(0.1)
    raise SystemExit("the server did not become ready in 60 s")


def one_request(url: str, path: Path, mode: str, headers: dict[str, str]) -> tuple[int, float, str]:
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=900, headers=headers) as client, path.open("rb") as f:
        if mode == "sync":
            r = client.post("/v1/analyze", files={"file": (path.name, f, "audio/wav")})
            return r.status_code, time.perf_counter() - started, r.headers.get("retry-after", "")
        r = client.post("/v1/analyses", files={"file": (path.name, f, "audio/wav")})
        if r.status_code != 202:
            return r.status_code, time.perf_counter() - started, r.headers.get("retry-after", "")
        job_url = r.headers["location"]
        for _ in range(9000):  # bounded: 900 s at 0.1 s
            job = client.get(job_url).json()
            if job["status"] in ("completed", "failed"):
                status = 200 if job["status"] == "completed" else 422
                client.delete(job_url)
                return status, time.perf_counter() - started, ""
            time.sleep(0.1)
        return 0, time.perf_counter() - started, ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--api-key", help="Bearer key for --url")
    parser.add_argument("-n", "--requests", type=int, default=8, help="concurrent uploads")
    parser.add_argument("--duration-s", type=float, default=360.0, help="call length, s")
    parser.add_argument("--mode", choices=("sync", "jobs"), default="sync")
    parser.add_argument("--workers", type=int, default=2, help="WORKERS of a started server")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        call = Path(tmp) / "call_6min.wav"
        build_call(call, args.duration_s)
        proc = None
        url = args.url
        if url is None:
            proc, url = start_server(Path(tmp) / "data", args.workers)
        watcher = RssWatcher(proc.pid) if proc is not None else None
        if watcher is not None:
            watcher.start()
        headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
        print(
            f"{args.requests} concurrent {args.mode} uploads of a {args.duration_s:.0f} s call "
            f"({call.stat().st_size / 1e6:.1f} MB) to {url}"
            + (f" (server WORKERS={args.workers})" if proc is not None else "")
        )
        started = time.perf_counter()
        try:
            with concurrent.futures.ThreadPoolExecutor(args.requests) as pool:
                results = list(
                    pool.map(
                        lambda _: one_request(url, call, args.mode, headers), range(args.requests)
                    )
                )
        finally:
            wall = time.perf_counter() - started
            if watcher is not None:
                watcher.done.set()
            if proc is not None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)
    latencies = sorted(t for status, t, _ in results if status == 200)
    by_status = collections.Counter(status for status, _, _ in results)
    bad = [r for r in results if r[0] >= 500 and not (r[0] == 503 and r[2])]
    ok = by_status.get(200, 0)
    print(f"wall time           {wall:.1f} s")
    print(
        f"throughput          {ok / wall * 60:.1f} calls/min, "
        f"{ok * args.duration_s / wall:.0f} s of audio per s"
    )
    if latencies:
        p50 = float(np.percentile(latencies, 50))
        p95 = float(np.percentile(latencies, 95))
        print(f"latency (200s)      p50 {p50:.1f} s, p95 {p95:.1f} s, max {latencies[-1]:.1f} s")
    print(f"answers by status   {dict(sorted(by_status.items()))}")
    if watcher is not None:
        print(f"server peak RSS     {watcher.peak / 1e6:.0f} MB (server + worker processes)")
    all_answered = sum(by_status.values()) == args.requests and 0 not in by_status
    verdict = "PASS" if all_answered and not bad else "FAIL"
    print(f"target (all answered, no 5xx but 503+Retry-After): {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
