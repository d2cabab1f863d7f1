"""``skipped``: the null metrics of a report and why (pure function, then the job resource)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.params import AnalysisConfig
from service.analysis import analyze_source
from service.schemas import JobOut, skipped_metrics
from tests.service.conftest import REPO, Server

SAMPLE = REPO / "samples" / "ami_two_party_8k_ulaw.wav"
FEATURES = ("pitch_level", "pitch_variability", "loudness", "speaking_rate", "articulation_rate")
VALUE_KEYS = ("r", "value", "distance")  # the headline value of an object with a reason


@pytest.fixture(scope="module")
def sample_report() -> dict[str, Any]:
    """The real report of the 42 s AMI sample: too short for any mirroring test."""
    report = analyze_source(Path(SAMPLE), AnalysisConfig(), name=SAMPLE.name)
    data: dict[str, Any] = json.loads(report.model_dump_json())
    return data


def _resolve(report: dict[str, Any], metric: str) -> Any:
    node: Any = report
    for key in metric.split("."):
        assert isinstance(node, dict) and key in node, f"{metric}: no {key!r} in the report"
        node = node[key]
    return node


def test_sample_report_lists_every_null_mirroring_result(sample_report: dict[str, Any]) -> None:
    before = copy.deepcopy(sample_report)
    skipped = skipped_metrics(sample_report)
    assert sample_report == before  # input untouched
    metrics = [s["metric"] for s in skipped]
    assert len(metrics) == len(set(metrics))
    assert all(isinstance(s["reason"], str) and s["reason"] for s in skipped)

    # both speakers have > 0.5 s of voiced speech and > 1 s of turns: nothing skipped there
    assert not [m for m in metrics if m.startswith("speakers.")]
    for role in ("agent", "customer"):
        assert sample_report["speakers"][role]["pitch"]["median_hz"] is not None

    # 42 s: 2 windows with both speakers, 0-1 exchanges -> every test of every feature is null
    for name in FEATURES:
        base = f"mirroring.features.{name}"
        assert f"{base}.mirrored" in metrics
        assert sample_report["mirroring"]["features"][name]["mirrored"] is None
        for part in (
            "convergence",
            "proximity.local",
            "synchrony.agent_follows_customer",
            "synchrony.customer_follows_agent",
            "synchrony.windowed",
        ):
            assert f"{base}.{part}" in metrics
    # levels on two channels have unknown gains: loudness has no global distance ...
    assert "mirroring.features.loudness.proximity.global" in metrics
    # ... but pitch does (measured, so not skipped)
    assert "mirroring.features.pitch_level.proximity.global" not in metrics
    assert (
        sample_report["mirroring"]["features"]["pitch_level"]["proximity"]["global"]["distance"]
        is not None
    )
    for dimension in ("tone", "tempo"):
        for role in ("agent", "customer"):
            assert f"mirroring.scores.{dimension}.{role}" in metrics

    # every entry points at a null value in the report, with the report's own reason
    for entry in skipped:
        target = _resolve(sample_report, entry["metric"])
        if entry["metric"].startswith("mirroring.scores.") or entry["metric"].endswith(".mirrored"):
            assert target is None
        else:
            assert target["reason"] == entry["reason"]
            assert [target[k] for k in VALUE_KEYS if k in target] == [None]
    by_metric = {s["metric"]: s["reason"] for s in skipped}
    assert "fewer than 12" in by_metric["mirroring.features.pitch_level.synchrony.windowed"] or (
        "fewer than 10" in by_metric["mirroring.features.pitch_level.synchrony.windowed"]
    )
    # the verdict's reason joins its parts once each
    verdict = by_metric["mirroring.features.pitch_level.mirrored"].split("; ")
    assert len(verdict) == len(set(verdict)) >= 2


def test_null_speaker_statistics_are_listed(sample_report: dict[str, Any]) -> None:
    report = copy.deepcopy(sample_report)
    customer = report["speakers"]["customer"]
    customer["pitch"] = dict.fromkeys(customer["pitch"])  # as the builder writes it: all null
    customer["rate"]["speaking_rate_syl_per_s"] = None
    customer["response_latency_median_s"] = None
    report["mirroring"] = None
    skipped = {s["metric"]: s["reason"] for s in skipped_metrics(report)}
    assert skipped == {
        "speakers.customer.pitch": "too little voiced speech",
        "speakers.customer.rate.speaking_rate_syl_per_s": "too little speech in turns",
        "speakers.customer.response_latency_median_s": (
            "no turn of this speaker answers one of the partner's"
        ),
        "mirroring": "mirroring was not measured",
    }


def test_measured_results_are_not_listed(sample_report: dict[str, Any]) -> None:
    """With the reasons gone and the scores present, nothing is skipped."""
    report = copy.deepcopy(sample_report)

    def strip(node: Any) -> None:
        if isinstance(node, dict):
            node.pop("reason", None)
            for value in node.values():
                strip(value)

    strip(report["mirroring"]["features"])
    report["mirroring"]["scores"] = {
        "tone": {"agent": 50.0, "customer": 61.2},
        "tempo": {"agent": 47.0, "customer": 50.0},
    }
    assert skipped_metrics(report) == []


@pytest.mark.parametrize("partial", [{}, {"speakers": None}, {"mirroring": {"features": 3}}])
def test_partial_reports_never_raise(partial: dict[str, Any]) -> None:
    assert skipped_metrics(partial) == []


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def test_completed_job_carries_skipped(client: httpx.Client, sample_report: dict[str, Any]) -> None:
    created = client.post("/v1/analyses", files={"file": (SAMPLE.name, SAMPLE.read_bytes())})
    assert created.status_code == 202, created.text
    assert created.json()["skipped"] is None
    job_id = created.json()["id"]
    deadline = time.monotonic() + 60.0
    job = created.json()
    while job["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
        job = client.get(f"/v1/analyses/{job_id}").json()
    assert job["status"] == "completed", job
    JobOut.model_validate(job)
    assert job["skipped"] == skipped_metrics(job["report"])
    assert job["skipped"] == skipped_metrics(sample_report)  # same audio, same answer
    metrics = {s["metric"] for s in job["skipped"]}
    assert "mirroring.features.speaking_rate.synchrony.agent_follows_customer" in metrics

    listed = client.get("/v1/analyses", params={"limit": 100}).json()["items"]
    mine = next(item for item in listed if item["id"] == job_id)
    assert mine["progress"] == 1.0 and mine["skipped"] is None  # only on GET of one job

    sync = client.post("/v1/analyze", files={"file": (SAMPLE.name, SAMPLE.read_bytes())})
    assert sync.status_code == 200, sync.text
    assert sync.json()["skipped"] == job["skipped"]  # the report carries the same list
    assert client.delete(f"/v1/analyses/{job_id}").status_code == 204
