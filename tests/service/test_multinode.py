"""Multi-node mode through real processes: PostgreSQL from the Debian package, two
``mirrorline serve`` API nodes and three ``mirrorline worker`` nodes on loopback.

Jobs go to either API node; a worker is killed (-9) in the middle of a job, an API node is
killed, the database is restarted; every job still completes once, and each job's webhook
deliveries all carry one ``webhook-id``. With ``MIRRORLINE_AUDIO_STORE_URL`` the audio goes
through a real S3 HTTP server (moto's) instead of PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.service.conftest import REPO, WEBHOOK_SECRET, Server
from tests.service.postgres import Postgres
from tests.service.s3 import S3Server


class Worker(Server):
    """One ``mirrorline worker`` process; ready when its analysis processes are warm."""

    def start(self, *, ready: bool = True, timeout_s: float = 90.0) -> Worker:
        self.spawn("worker")
        deadline = time.monotonic() + timeout_s
        while ready and "workers ready" not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log()}")
            time.sleep(0.1)
        return self

    def lines(self, message: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log().splitlines():
            if line.startswith("{") and f'"message": "{message}"' in line:
                found.append(json.loads(line))
        return found


class Receiver:
    """A webhook receiver on loopback that refuses each event's first delivery (500), so
    every event is delivered at least twice."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, dict[str, Any]]] = []
        seen: set[str] = set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["content-length"]))
                webhook_id = self.headers["webhook-id"]
                outer.deliveries.append((webhook_id, json.loads(body)))
                status = 200 if webhook_id in seen else 500
                seen.add(webhook_id)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    pg = Postgres(tmp_path_factory.mktemp("pg")).start()
    yield pg
    pg.remove()


def _long_call(path: Path, minutes: float) -> Path:
    """A real two-party call (the bundled sample, looped) long enough to be caught
    mid-analysis."""
    from dsp.io import decode
    from tests.audiofiles import write_audio

    sample = decode(REPO / "samples" / "ami_two_party_8k_ulaw.wav").samples
    n = int(minutes * 60 * 8000)
    pieces = [sample if k % 2 == 0 else sample[::-1] for k in range(n // sample.shape[1] + 1)]
    return write_audio(path, np.concatenate(pieces, axis=1)[:, :n], 8000, codec="pcm_mulaw")


def _wait(predicate: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def test_jobs_survive_killed_worker_killed_api_node_and_database_restart(
    postgres: Postgres, tmp_path: Path
) -> None:
    url = postgres.create_database("kills")
    receiver = Receiver()
    env = {
        "MIRRORLINE_DATABASE_URL": url,
        "MIRRORLINE_WORKER_HEARTBEAT_S": "1",
        "MIRRORLINE_WORKER_STALLED_S": "4",
        "MIRRORLINE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "MIRRORLINE_WEBHOOK_ALLOW_PRIVATE": "true",
        "MIRRORLINE_WEBHOOK_BACKOFF_S": "0.2",
        "MIRRORLINE_MAX_JOB_ATTEMPTS": "3",
    }
    apis = [Server(tmp_path / f"api{i}", env) for i in range(2)]
    workers = [Worker(tmp_path / f"worker{i}", env) for i in range(3)]
    nodes: list[Server] = [*apis, *workers]
    try:
        for node in nodes:  # start all, then wait: they warm up side by side
            threading.Thread(target=node.start).start()
        _wait(lambda: all(n.process is not None for n in nodes), 30, "processes")
        for node in apis:
            node.wait("/readyz", timeout_s=90)
        _wait(lambda: all("workers ready" in w.log() for w in workers), 90, "workers")

        call = _long_call(tmp_path / "call.wav", 20)
        submitted: list[str] = []

        def submit(api: Server, key: str) -> str:
            with api.client(timeout=120) as client, call.open("rb") as f:
                r = client.post(
                    "/v1/analyses",
                    files={"file": ("call.wav", f, "audio/wav")},
                    data={"callback_url": receiver.url},
                    headers={"Idempotency-Key": key},
                )
            assert r.status_code == 202, r.text
            submitted.append(r.json()["id"])
            return str(r.json()["id"])

        # 1. a worker killed (-9) mid-job: the job runs again on another worker
        first = submit(apis[0], "job-0")
        victim = _wait(
            lambda: next(
                (w for w in workers if any(x["job_id"] == first for x in w.lines("job started"))),
                None,
            ),
            60,
            "the first job to start",
        )
        assert victim.process is not None
        os.kill(victim.process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        for i in range(1, 4):  # more jobs through both API nodes meanwhile
            submit(apis[i % 2], f"job-{i}")

        def rerun_started() -> bool:
            return any(
                x["job_id"] == first and x.get("attempt") == 2
                for w in workers
                if w is not victim
                for x in w.lines("job started")
            )

        _wait(rerun_started, 30, "the killed worker's job to start again elsewhere")
        rerun_after_s = time.monotonic() - killed_at

        # 2. an API node killed (-9): the jobs it accepted are not lost
        assert submit(apis[0], "job-1") == submitted[1]  # a retried request: the same job
        submitted.pop()
        apis[0].stop(signal.SIGKILL)

        # 3. the database restarted with jobs waiting and running
        submit(apis[1], "job-4")
        postgres.restart(down_s=2.0)
        submit_after = _wait(lambda: _try_submit(apis[1], call, receiver.url), 60, "API back")
        submitted.append(submit_after)

        with apis[1].client() as client:

            def all_done() -> list[dict[str, Any]] | None:
                jobs = [client.get(f"/v1/analyses/{j}").json() for j in submitted]
                statuses = [j["status"] for j in jobs]
                assert "failed" not in statuses, jobs
                return jobs if all(s == "completed" for s in statuses) else None

            jobs = _wait(all_done, 240, "every job to complete")
            assert len({j["id"] for j in jobs}) == len(submitted) == 6
            assert next(j for j in jobs if j["id"] == first)["attempts"] == 2
            for job in jobs:
                report = client.get(f"/v1/analyses/{job['id']}").json()["report"]
                assert report["audio"]["duration_s"] == pytest.approx(1200, abs=0.1)
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {"database": "ok", "queue": "ok"}
            metrics = client.get("/metrics").text
            assert "mirrorline_queue_depth 0.0" in metrics
            # the two live workers: each beats every second, but after the database restart
            # a worker's queue loop comes back only on its next round, so poll for it
            _wait(
                lambda: "mirrorline_workers 2.0" in client.get("/metrics").text,
                30,
                "both live workers in /metrics",
            )

        # each result stored once: one "job completed" line per job over all workers
        completed = [x["job_id"] for w in workers for x in w.lines("job completed")]
        assert sorted(completed) == sorted(submitted)

        # every event delivered at least twice (the receiver refuses the first), one id each
        def delivered_twice() -> bool:
            counts: dict[str, int] = defaultdict(int)
            for webhook_id, _ in list(receiver.deliveries):
                counts[webhook_id] += 1
            return len(counts) >= 6 and min(counts.values()) >= 2

        _wait(delivered_twice, 30, "every webhook's second delivery")
        ids_per_job: dict[str, set[str]] = defaultdict(set)
        for webhook_id, body in receiver.deliveries:
            assert body["type"] == "analysis.completed"
            ids_per_job[body["data"]["id"]].add(webhook_id)
        assert sorted(ids_per_job) == sorted(submitted)
        assert all(len(ids) == 1 for ids in ids_per_job.values())
        assert len(receiver.deliveries) >= 12
        print(f"killed worker's job started again after {rerun_after_s:.1f} s")
        assert rerun_after_s < 4 + 2 * 1 + 5  # WORKER_STALLED_S + 2 heartbeats + slack
    finally:
        for node in nodes:
            node.stop()
        receiver.server.shutdown()
        receiver.server.server_close()


def _try_submit(api: Server, call: Path, callback: str) -> str | None:
    try:
        with api.client(timeout=120) as client, call.open("rb") as f:
            r = client.post(
                "/v1/analyses",
                files={"file": ("call.wav", f, "audio/wav")},
                data={"callback_url": callback},
            )
    except httpx.HTTPError:
        return None
    if r.status_code == 503:  # the database is not back yet: a clean, retryable answer
        assert r.json()["code"] == "server.unavailable"
        return None
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_migrations_apply_once_and_refuse_a_newer_schema(postgres: Postgres) -> None:
    import psycopg

    from service.pg_schema import MIGRATIONS, SchemaTooNew, migrate, schema_version
    from service.pgstore import PgStore

    url = postgres.create_database("migrations")
    store = PgStore(url)  # a fresh database: every migration, and the queue's schema
    store.close()
    with psycopg.connect(url, autocommit=True) as conn:
        assert schema_version(conn) == MIGRATIONS[-1][0]
        assert migrate(conn) == []  # a second node starting: nothing to do
        assert conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone() != (None,)
        conn.execute("INSERT INTO mirrorline_migrations (version, name) VALUES (999, 'future')")
    with pytest.raises(SchemaTooNew, match="newer than this release"):
        PgStore(url)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MIRRORLINE_")}
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        cwd=REPO,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_worker_without_database_url_is_a_clear_error(tmp_path: Path) -> None:
    out = _cli("worker", env={"MIRRORLINE_DATA_DIR": str(tmp_path)})
    assert out.returncode == 2
    assert out.stderr.startswith("error: config.invalid: mirrorline worker runs jobs from")
    out = _cli("worker", env={"MIRRORLINE_DATABASE_URL": "mysql://x/y"})
    assert out.returncode == 2
    assert out.stderr.startswith("error: config.invalid: MIRRORLINE_DATABASE_URL: ")


SAMPLE = REPO / "samples" / "ami_two_party_8k_ulaw.wav"


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[S3Server]:
    server = S3Server(tmp_path / "moto.log").start()
    yield server
    server.stop()


def _audio_rows(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT COUNT(*) FROM audio_chunks").fetchone()
    assert row is not None
    return int(row[0])


def test_audio_through_an_s3_store_on_two_api_nodes_and_three_workers(
    postgres: Postgres, s3: S3Server, tmp_path: Path
) -> None:
    url = postgres.create_database("s3store")
    env = {
        "MIRRORLINE_DATABASE_URL": url,
        "MIRRORLINE_AUDIO_STORE_URL": f"s3://{s3.bucket}/jobs",
        **s3.env,
    }
    apis = [Server(tmp_path / f"api{i}", env) for i in range(2)]
    workers = [Worker(tmp_path / f"worker{i}", env) for i in range(3)]
    nodes: list[Server] = [*apis, *workers]
    try:
        for node in nodes:
            threading.Thread(target=node.start).start()
        _wait(lambda: all(n.process is not None for n in nodes), 30, "processes")
        for node in apis:
            node.wait("/readyz", timeout_s=90)
        _wait(lambda: all("workers ready" in w.log() for w in workers), 90, "workers")

        def submit(api: Server, **data: str) -> httpx.Response:
            with api.client(timeout=60) as client, SAMPLE.open("rb") as f:
                return client.post(
                    "/v1/analyses", files={"file": ("call.wav", f, "audio/wav")}, data=data
                )

        responses = [submit(apis[i % 2], keep_audio=str(i == 0).lower()) for i in range(4)]
        assert [r.status_code for r in responses] == [202] * 4, [r.text for r in responses]
        ids = [r.json()["id"] for r in responses]
        with apis[1].client() as client:

            def all_done() -> list[dict[str, Any]] | None:
                jobs = [client.get(f"/v1/analyses/{j}").json() for j in ids]
                assert all(j["status"] != "failed" for j in jobs), jobs
                return jobs if all(j["status"] == "completed" for j in jobs) else None

            jobs = _wait(all_done, 120, "every job to complete")
            for job in jobs:
                assert job["report"]["audio"]["duration_s"] == pytest.approx(42, abs=1)
            # the audio went through the bucket, never PostgreSQL; analysed audio is gone,
            # the kept one stays until its job is deleted
            assert _audio_rows(url) == 0

            def analysed_audio_gone() -> bool:
                # a worker stores the result, then deletes the audio: allow it a moment
                stored = [client.get(f"/v1/analyses/{j}").json()["audio_stored"] for j in ids]
                return stored == [True, False, False, False] and s3.keys() == [f"jobs/{ids[0]}"]

            _wait(analysed_audio_gone, 30, "the analysed audio to be deleted")
            assert client.delete(f"/v1/analyses/{ids[0]}").status_code == 204
            assert s3.keys() == []
            ready = client.get("/readyz")
            assert ready.json()["checks"] == {"database": "ok", "queue": "ok", "audio_store": "ok"}
        ran = {x["job_id"] for w in workers for x in w.lines("job completed")}
        assert ran == set(ids)

        # the store unreachable: a clean 503 that leaves no job, no queue entry, no file
        s3.stop()
        refused = submit(apis[0])
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "server.audio_store_unavailable"
        assert refused.headers["retry-after"] == "5"
        with apis[0].client() as client:
            assert len(client.get("/v1/analyses").json()["items"]) == 3
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert "audio_store: unavailable" in ready.json()["detail"]
        for folder in ("audio", "uploads"):
            assert list((apis[0].data_dir / folder).iterdir()) == []
    finally:
        for node in nodes:
            node.stop()


def test_a_worker_fails_a_job_whose_audio_object_is_gone_and_waits_out_an_unreachable_store(
    postgres: Postgres, s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import shutil

    from service.jobs import JobManager
    from service.metrics import Metrics
    from service.pgstore import PgStore
    from service.s3audio import AudioStoreUnavailable, open_audio_store
    from service.settings import Settings

    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    url = postgres.create_database("s3worker")
    settings = Settings(
        database_url=url, audio_store_url=f"s3://{s3.bucket}", data_dir=tmp_path / "data"
    )
    store = PgStore(url, audio=open_audio_store(settings.audio_store_url))
    jobs = JobManager(settings, store, Metrics(store.counts))
    jobs.upload_dir.mkdir(parents=True)

    def queued(job_id: str) -> str:
        audio = tmp_path / f"{job_id}.wav"
        shutil.copy(SAMPLE, audio)
        values = {
            "id": job_id,
            "owner": "",
            "status": "queued",
            "created_at": time.time(),
            "config": {},
            "filename": "call.wav",
            "audio_path": str(audio),
            "base_url": "",
        }
        job, created = store.create_job(values)
        assert created and job.audio_path == f"s3://{s3.bucket}/{job_id}"
        assert not audio.exists()  # moved into the bucket
        return job_id

    try:
        # the object deleted behind Mirrorline's back: the job fails once, clearly; the
        # queue's redelivery finds it finished and runs nothing
        gone = queued("an_gone")
        s3.client().delete_object(Bucket=s3.bucket, Key=gone)
        asyncio.run(jobs.run_queued(gone))
        job = store.get(gone)
        assert job is not None and job.status == "failed" and job.attempts == 1
        assert job.error_code == "job.audio_missing"
        asyncio.run(jobs.run_queued(gone))
        assert store.get(gone) == job

        # the store unreachable when a worker takes a job: the job goes back to the queue,
        # the attempt not counted, and the task raises so the queue retries it later
        waiting = queued("an_waiting")
        s3.stop()
        with pytest.raises(AudioStoreUnavailable):
            asyncio.run(jobs.run_queued(waiting))
        job = store.get(waiting)
        assert job is not None and job.status == "queued" and job.attempts == 0
        assert list(jobs.upload_dir.iterdir()) == []
    finally:
        store.close()


def test_audio_store_settings_are_checked_before_anything_starts(tmp_path: Path) -> None:
    database = {"MIRRORLINE_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"}
    out = _cli("worker", env={"MIRRORLINE_AUDIO_STORE_URL": "s3://bucket/jobs"})
    assert out.returncode == 2
    assert out.stderr.startswith(
        "error: config.invalid: MIRRORLINE_AUDIO_STORE_URL is for the multi-node mode: set "
        "MIRRORLINE_DATABASE_URL too"
    ), out.stderr
    out = _cli("worker", env={**database, "MIRRORLINE_AUDIO_STORE_URL": "https://bucket/jobs"})
    assert out.returncode == 2
    assert out.stderr.startswith("error: config.invalid: MIRRORLINE_AUDIO_STORE_URL: "), out.stderr
    assert "s3://bucket" in out.stderr
    # a bucket that does not answer: the node does not start, and says why
    unreachable = {
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "MIRRORLINE_DATA_DIR": str(tmp_path / "data"),
    }
    out = _cli(
        "worker",
        env={**database, **unreachable, "MIRRORLINE_AUDIO_STORE_URL": "s3://bucket/jobs"},
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        "error: server.audio_store_unavailable: the audio store s3://bucket could not be "
        "reached (EndpointConnectionError)"
    ), out.stderr
    # without the s3 extra (boto3 shadowed as if not installed): the install command
    shadow = tmp_path / "shadow" / "boto3"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no module named boto3')\n")
    out = _cli(
        "serve",
        env={
            **database,
            "MIRRORLINE_AUDIO_STORE_URL": "s3://bucket/jobs",
            "PYTHONPATH": os.pathsep.join([str(tmp_path / "shadow"), str(REPO)]),
        },
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: config.invalid: MIRRORLINE_AUDIO_STORE_URL"), out.stderr
    assert "pip install 'mirrorline[s3]'" in lines[0]
