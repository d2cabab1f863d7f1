"""GET /v1/analyses/{id}/evidence.zip: the rows each mirroring test used (real server)."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator

import httpx
import pytest

from tests.dsp.test_mirroring_evidence import _recompute
from tests.service.audio import call_samples, truncated_wav, wav_bytes
from tests.service.conftest import Server
from tests.service.test_api import assert_problem
from tests.service.test_jobs import submit, wait_done


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def _rows(archive: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))


def test_evidence_zip_of_a_completed_job(client: httpx.Client) -> None:
    # ~20 exchanges per direction, FLAC to stay under the test server's 2 MB upload limit
    created = submit(client, wav_bytes(call_samples(100.0, seed=2), 8000, fmt="FLAC"))
    assert created.status_code == 202, created.text
    job = wait_done(client, created.json()["id"], timeout_s=120.0)
    assert job["status"] == "completed", job

    got = client.get(f"/v1/analyses/{job['id']}/evidence.zip")
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/zip"
    assert f'filename="{job["id"]}-evidence.zip"' in got.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(got.content))
    names = set(archive.namelist())
    assert {"README.txt", "index.csv", "tests.csv", "window_series.csv", "turns.csv"} <= names
    assert {"ipus_agent.csv", "ipus_customer.csv"} <= names

    features = job["report"]["mirroring"]["features"]
    redone = 0
    for row in _rows(archive, "tests.csv"):
        if row["test"] not in ("agent_follows_customer", "customer_follows_agent"):
            continue
        reported = features[row["feature"]]["synchrony"][row["test"]]
        assert int(row["n"]) == reported["n"]
        if reported["r"] is None:
            continue
        covariates = row["covariates"].split(";") if row["covariates"] else []
        r, p, _ = _recompute(_rows(archive, row["file"]), covariates)
        assert r == pytest.approx(float(row["r"]), abs=1e-9)
        assert p == pytest.approx(float(row["p"]), abs=1e-9)
        assert r == pytest.approx(reported["r"], abs=1e-4)  # the report rounds
        redone += 1
    assert redone >= 6

    assert client.delete(f"/v1/analyses/{job['id']}").status_code == 204
    assert_problem(client.get(f"/v1/analyses/{job['id']}/evidence.zip"), 404, "job.not_found")


def test_evidence_of_failed_and_unknown_jobs(client: httpx.Client) -> None:
    job = wait_done(client, submit(client, truncated_wav()).json()["id"])
    assert job["status"] == "failed"
    assert_problem(client.get(f"/v1/analyses/{job['id']}/evidence.zip"), 409, "job.failed")
    assert_problem(client.get("/v1/analyses/an_nope/evidence.zip"), 404, "job.not_found")
