"""Cost of job progress: one worker write, and a whole analysis with and without the writer.

Usage: python bench/service_progress.py [--minutes 10] [--repeats 3]

Tiles the repo's AMI sample (samples/ami_two_party_8k_ulaw.wav, 42 s) to ``--minutes``,
then times ``analyze_source`` alone, with ``ProgressWriter`` at its 1 s interval, and with
a write after every block (interval 0), each into a scratch job database; and the time of
one progress write (WAL, synchronous=NORMAL).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from models.params import AnalysisConfig  # noqa: E402
from service.analysis import analyze_source  # noqa: E402
from service.store import Store  # noqa: E402
from service.worker import ProgressWriter  # noqa: E402


def _store(folder: Path) -> Store:
    store = Store(folder / "jobs.sqlite3")
    store.create_job(
        {
            "id": "an_bench",
            "owner": "",
            "status": "queued",
            "created_at": time.time(),
            "config": {},
            "filename": None,
            "audio_path": None,
            "keep_audio": False,
            "size_bytes": 0,
            "idempotency_key": None,
            "fingerprint": None,
            "callback_url": None,
            "base_url": "http://bench",
        }
    )
    store.claim_next()
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        samples, rate_hz = sf.read(
            REPO / "samples" / "ami_two_party_8k_ulaw.wav", dtype="float32", always_2d=True
        )
        n = int(args.minutes * 60 * rate_hz)
        call = folder / "call.wav"
        sf.write(call, np.tile(samples, (-(-n // len(samples)), 1))[:n], rate_hz, subtype="ULAW")
        store = _store(folder)
        config = AnalysisConfig()
        analyze_source(call, config)  # warm caches and imports

        writer = ProgressWriter(str(store.path), "an_bench", interval_s=0.0)
        write_ms = []
        for i in range(500):
            started = time.perf_counter()
            writer(float(i), 1000.0)
            write_ms.append(1e3 * (time.perf_counter() - started))
        writer.close()
        print(
            f"one write: median {statistics.median(write_ms):.3f} ms, "
            f"p99 {np.percentile(write_ms, 99):.3f} ms ({len(write_ms)} writes)"
        )

        for label, interval_s in (("no writer", None), ("1 s interval", 1.0), ("every block", 0.0)):
            times = []
            writes = 0
            for _ in range(args.repeats):
                on_progress: ProgressWriter | None = (
                    None
                    if interval_s is None
                    else ProgressWriter(str(store.path), "an_bench", interval_s=interval_s)
                )
                started = time.perf_counter()
                analyze_source(call, config, on_progress=on_progress)
                times.append(time.perf_counter() - started)
                if on_progress is not None:
                    writes = on_progress.writes
                    on_progress.close()
            print(
                f"{args.minutes:g}-min call, {label:>12}: median {statistics.median(times):.3f} s "
                f"of {args.repeats} (min {min(times):.3f} s), {writes} writes per analysis"
            )
        store.close()


if __name__ == "__main__":
    main()
