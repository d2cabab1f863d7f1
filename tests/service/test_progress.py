"""Job progress: the worker's throttled writer, the store columns, and the real HTTP stack."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from service.store import Store
from service.worker import PROGRESS_CAP, ProgressWriter, progress_fraction
from tests.service.conftest import REPO

SAMPLE = REPO / "samples" / "ami_two_party_8k_ulaw.wav"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _job_values(job_id: str) -> dict[str, Any]:
    return {
        "id": job_id,
        "owner": "",
        "status": "queued",
        "created_at": time.time(),
        "config": {},
        "filename": "call.wav",
        "audio_path": None,
        "keep_audio": False,
        "size_bytes": 1,
        "idempotency_key": None,
        "fingerprint": None,
        "callback_url": None,
        "base_url": "http://test",
    }


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "jobs.sqlite3")
    yield s
    s.close()


def test_progress_fraction() -> None:
    assert progress_fraction(60.0, 240.0) == 0.25
    assert progress_fraction(0.0, 240.0) == 0.0
    assert progress_fraction(240.0, 240.0) == PROGRESS_CAP  # 1.0 is kept for completed
    assert progress_fraction(250.0, 240.0) == PROGRESS_CAP  # declared durations are approximate
    assert progress_fraction(60.0, None) is None
    assert progress_fraction(60.0, 0.0) is None
    assert progress_fraction(60.0, float("nan")) is None
    assert progress_fraction(float("nan"), 240.0) is None


def test_writer_throttles_and_writes_only_processing_jobs(store: Store) -> None:
    store.create_job(_job_values("an_a"))
    claimed = store.claim_next()
    assert claimed is not None and claimed.id == "an_a"
    assert claimed.progress is None and claimed.processed_s is None
    clock = FakeClock()
    writer = ProgressWriter(str(store.path), "an_a", interval_s=1.0, clock=clock)
    try:
        writer(60.0, 240.0)  # the first report is written at once
        job = store.get("an_a")
        assert job is not None and (job.progress, job.processed_s) == (0.25, 60.0)

        clock.now += 0.5
        writer(120.0, 240.0)  # within the interval: dropped
        job = store.get("an_a")
        assert job is not None and (job.progress, job.processed_s) == (0.25, 60.0)

        clock.now += 0.6
        writer(180.0, 240.0)
        job = store.get("an_a")
        assert job is not None and (job.progress, job.processed_s) == (0.75, 180.0)

        clock.now += 1.0
        writer(200.0, None)  # unknown total: seconds only
        job = store.get("an_a")
        assert job is not None and (job.progress, job.processed_s) == (None, 200.0)
        assert writer.writes == 3

        assert store.complete("an_a", "{}", "", ttl_s=60.0)
        clock.now += 5.0
        writer(240.0, 240.0)  # a late write never touches a finished job
        job = store.get("an_a")
        assert job is not None and job.status == "completed" and job.progress == 1.0
    finally:
        writer.close()


def test_requeue_and_reclaim_reset_progress(store: Store) -> None:
    store.create_job(_job_values("an_b"))
    assert store.claim_next() is not None
    assert store.set_progress("an_b", 0.5, 120.0)
    store.requeue("an_b", refund_attempt=True)
    job = store.get("an_b")
    assert job is not None and job.status == "queued"
    assert job.progress is None and job.processed_s is None
    assert not store.set_progress("an_b", 0.5, 120.0)  # only processing jobs take progress


def test_writer_never_raises(tmp_path: Path) -> None:
    missing = ProgressWriter(str(tmp_path / "no" / "such" / "dir.sqlite3"), "an_x")
    missing(1.0, 2.0)  # cannot open: dropped
    assert missing.writes == 0
    missing.close()

    locked_db = tmp_path / "locked.sqlite3"
    Store(locked_db).close()
    holder = sqlite3.connect(locked_db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        writer = ProgressWriter(str(locked_db), "an_x", timeout_s=0.05)
        started = time.perf_counter()
        writer(1.0, 2.0)
        assert time.perf_counter() - started < 1.0  # a locked database does not stall it
        assert writer.writes == 0
        writer.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_old_database_gains_progress_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, owner TEXT NOT NULL, status TEXT NOT NULL, "
        "created_at REAL NOT NULL, started_at REAL, finished_at REAL, expires_at REAL, "
        "config TEXT NOT NULL, filename TEXT, audio_path TEXT, keep_audio INTEGER NOT NULL "
        "DEFAULT 0, size_bytes INTEGER NOT NULL DEFAULT 0, idempotency_key TEXT, "
        "fingerprint TEXT, callback_url TEXT, base_url TEXT NOT NULL, attempts INTEGER NOT "
        "NULL DEFAULT 0, error_code TEXT, error_message TEXT, report TEXT, windows_csv TEXT)"
    )
    db.execute(
        "INSERT INTO jobs (id, owner, status, created_at, config, base_url) "
        "VALUES ('an_old', '', 'completed', 1.0, '{}', 'http://x')"
    )
    db.commit()
    db.close()
    store = Store(path)
    try:
        job = store.get("an_old")
        assert job is not None and job.status == "completed" and job.progress is None
    finally:
        store.close()


def long_call_wav(path: Path, duration_s: float) -> Path:
    """The repo's AMI sample (42 s, stereo mu-law 8 kHz) tiled to ``duration_s``, mu-law."""
    samples, rate_hz = sf.read(SAMPLE, dtype="float32", always_2d=True)
    n = int(duration_s * rate_hz)
    reps = -(-n // len(samples))
    sf.write(path, np.tile(samples, (reps, 1))[:n], rate_hz, subtype="ULAW")
    return path


def test_progress_of_a_long_job_over_http(make_server: Any, tmp_path: Path) -> None:
    """A 4-minute call is 4 blocks of 60 s: progress rises while processing, then 1.0.

    The first block's progress is written at once and stays until the next write (>= 1 s
    later) or completion, i.e. for the rest of the analysis (~0.5 s of the ~1.2 s a 4-minute
    call takes here, longer on a loaded machine, since the last stage follows the last block);
    a poll every few ms sees it.
    """
    server = make_server()
    wav = long_call_wav(tmp_path / "long.wav", 240.0)
    seen: list[tuple[str, float | None, float | None]] = []
    with server.client() as client:
        created = client.post("/v1/analyses", files={"file": ("long.wav", wav.read_bytes())})
        assert created.status_code == 202, created.text
        job = created.json()
        assert (job["status"], job["progress"], job["processed_s"]) == ("queued", 0.0, None)
        deadline = time.monotonic() + 120.0
        while job["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline, f"job still {job['status']}: {seen}"
            time.sleep(0.005)
            job = client.get(f"/v1/analyses/{job['id']}").json()
            seen.append((job["status"], job["progress"], job["processed_s"]))
    assert job["status"] == "completed", job
    assert job["progress"] == 1.0
    assert job["processed_s"] is None
    assert job["report"]["audio"]["duration_s"] == pytest.approx(240.0, abs=0.1)

    processing = [(p, s) for status, p, s in seen if status == "processing"]
    fractions = [p for p, _ in processing if p is not None]
    seconds = [s for _, s in processing if s is not None]
    assert all(0.0 <= p <= PROGRESS_CAP for p in fractions), processing
    assert fractions == sorted(fractions), processing  # monotonic non-decreasing
    assert seconds == sorted(seconds), processing
    progressed = [(p, s) for p, s in processing if p is not None and p > 0.0]
    assert progressed, f"no intermediate progress seen: {seen}"
    for p, s in progressed:  # progress is the analysed share of the 240 s
        assert s is not None and p == pytest.approx(s / 240.0, abs=0.011)
        assert s in (60.0, 120.0, 180.0, 240.0)  # one value per 60 s block
