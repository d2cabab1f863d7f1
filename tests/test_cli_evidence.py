"""`mirrorline analyze CALL --evidence DIR`: the rows each mirroring test used, as CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.dsp.test_mirroring_evidence import _read, _recompute
from tests.test_cli import _one_error_line, _short_call, run_cli


def test_evidence_folder_lets_each_directional_test_be_redone(tmp_path: Path) -> None:
    from tests.service.audio import stereo_wav

    call = tmp_path / "call.wav"
    call.write_bytes(stereo_wav(150.0, seed=2))  # ~50 exchanges per direction
    report_path, folder = tmp_path / "r.json", tmp_path / "new" / "evidence"
    out = run_cli("analyze", str(call), "-o", str(report_path), "--evidence", str(folder))
    assert out.returncode == 0, out.stderr
    report = json.loads(report_path.read_text())
    names = {p.name for p in folder.iterdir()}
    assert {"README.txt", "index.csv", "tests.csv", "window_series.csv", "turns.csv"} <= names
    assert {"ipus_agent.csv", "ipus_customer.csv", "proximity_pitch_level.csv"} <= names
    tests = {(row["feature"], row["test"]): row for row in _read(folder / "tests.csv")}
    redone = 0
    for name, feature in report["mirroring"]["features"].items():
        for direction in ("agent_follows_customer", "customer_follows_agent"):
            reported = feature["synchrony"][direction]
            row = tests[(name, direction)]
            assert int(row["n"]) == reported["n"]
            if reported["r"] is None:
                assert row["r"] == "" and row["reason"]
                continue
            covariates = row["covariates"].split(";") if row["covariates"] else []
            r, p, _ = _recompute(_read(folder / row["file"]), covariates)
            assert r == pytest.approx(float(row["r"]), abs=1e-9)
            assert p == pytest.approx(float(row["p"]), abs=1e-9)
            assert r == pytest.approx(reported["r"], abs=1e-4)  # the report rounds
            redone += 1
    assert redone >= 10
    ipus = _read(folder / "ipus_agent.csv")
    assert len(ipus) == report["speakers"]["agent"]["ipus"]
    with (folder / "window_series.csv").open() as f:
        assert sum(1 for _ in csv.reader(f)) - 1 == len(report["windows"])


def test_evidence_takes_one_file_and_a_writable_folder(tmp_path: Path) -> None:
    a = _short_call(tmp_path / "in" / "a.wav")
    b = _short_call(tmp_path / "in" / "b.wav", seed=1)
    out = run_cli("analyze", str(a), str(b), "--evidence", str(tmp_path / "ev"))
    _one_error_line(out, "input.invalid")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = run_cli("analyze", str(a), "--evidence", str(blocker / "ev"))
    _one_error_line(out, "output.unwritable")
    assert "Traceback" not in out.stderr
