"""dsp.mirroring.evidence: the CSVs written for a call are enough to recompute its tests."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.mirroring_sim import simulate_call  # noqa: E402
from dsp.mirroring import FEATURES, PROSODY_FEATURES, analyze_mirroring  # noqa: E402
from dsp.mirroring.evidence import mirroring_evidence  # noqa: E402


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _num(cell: str) -> float:
    return float(cell) if cell != "" else math.nan


def _recompute(rows: list[dict[str, str]], covariates: list[str]) -> tuple[float, float, int]:
    """r and p of a directional test from its CSV rows alone (numpy + scipy.stats)."""
    used = [row for row in rows if row["used"] == "1"]
    n = len(used)
    x = np.array([float(row["x"]) for row in used])
    y = np.array([float(row["y"]) for row in used])
    z = np.array([[float(row[c]) for c in covariates] for row in used]).reshape(n, -1)
    design = np.column_stack([np.ones(n), z])
    ex = x - design @ np.linalg.lstsq(design, x, rcond=None)[0]
    ey = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    r = float(stats.pearsonr(ex, ey)[0])
    df = n - 2 - len(covariates)
    t = r * math.sqrt(df / (1 - r * r))
    return r, float(2 * stats.t.sf(abs(t), df)), df


@pytest.mark.parametrize(
    ("seed", "kw"),
    [
        (3, {"scenario": "follow", "feature": "pitch_level", "follower": "agent"}),
        (11, {"scenario": "follow", "feature": "pause", "follower": "customer"}),
        (5, {"scenario": "strong_ac"}),
    ],
)
def test_directional_r_and_p_recomputed_from_the_csvs(
    tmp_path: Path, seed: int, kw: dict[str, str]
) -> None:
    call = simulate_call(np.random.default_rng(seed), **kw)  # type: ignore[arg-type]
    report = analyze_mirroring(call.agent, call.customer, call.windows)
    evidence = mirroring_evidence(call.agent, call.customer, call.windows)
    assert evidence.result.to_dict() == report.to_dict()  # the same run, not a second one
    evidence.write(tmp_path)

    tests = {(row["feature"], row["test"]): row for row in _read(tmp_path / "tests.csv")}
    checked = 0
    for f in report.features:
        for direction in ("agent_follows_customer", "customer_follows_agent"):
            sync = getattr(f, direction)
            row = tests[(f.name, direction)]
            rows = _read(tmp_path / row["file"])
            used = sum(r["used"] == "1" for r in rows)
            assert used == sync.n
            # a row is used exactly when x, y and the previous turn-final value are finite
            for r in rows:
                finite = all(math.isfinite(_num(r[c])) for c in ("x", "y", "follower_prev_final"))
                assert (r["used"] == "1") == finite
            if sync.r is None:
                continue
            covariates = row["covariates"].split(";") if row["covariates"] else []
            r, p, df = _recompute(rows, covariates)
            assert df == sync.df == int(row["df"])
            assert r == pytest.approx(sync.r, abs=1e-9)
            assert p == pytest.approx(sync.p, abs=1e-9)
            assert float(row["r"]) == sync.r and float(row["p"]) == sync.p  # full precision
            checked += 1
    assert checked >= 8

    # local proximity: the value is the mean of the used differences
    for f in report.features:
        if f.proximity.local_value is None:
            continue
        rows = _read(tmp_path / f"proximity_{f.name}.csv")
        diffs = [float(r["diff"]) for r in rows if r["used"] == "1"]
        assert len(diffs) == f.proximity.local_n
        assert float(np.mean(diffs)) == pytest.approx(f.proximity.local_value, abs=1e-12)
        for r in rows:
            if r["used"] == "1":
                adj, non = float(r["adjacent_similarity"]), float(r["nonadjacent_similarity"])
                assert adj == pytest.approx(-abs(float(r["y"]) - float(r["x_adjacent"])))
                assert float(r["diff"]) == pytest.approx(adj - non)
        starts = [float(r["follower_start_s"]) for r in rows if r["used"] == "1"]
        assert starts == sorted(starts)  # the order the test reads them


def test_window_series_ipus_and_index(tmp_path: Path) -> None:
    call = simulate_call(np.random.default_rng(7), scenario="converge", feature="pitch_level")
    evidence = mirroring_evidence(call.agent, call.customer, call.windows)
    evidence.write(tmp_path)
    windows = _read(tmp_path / "window_series.csv")
    starts = np.asarray(call.windows.starts_s)
    assert len(windows) == starts.size
    assert [float(w["start_s"]) for w in windows] == starts.tolist()
    values = call.windows.values
    for w, row in enumerate(windows):
        assert float(row["centre_s"]) == starts[w] + call.windows.window_s / 2
        pitch = np.asarray(values["pitch_level"])
        for role, i in (("agent", 0), ("customer", 1)):
            got = _num(row[f"{role}_pitch_level"])
            assert (math.isnan(got) and math.isnan(pitch[i, w])) or got == pitch[i, w]
    for role, units in (("agent", call.agent), ("customer", call.customer)):
        ipus = _read(tmp_path / f"ipus_{role}.csv")
        assert [float(r["start_s"]) for r in ipus] == np.asarray(units.start_s).tolist()
        assert [int(r["turn"]) for r in ipus] == np.asarray(units.turn_index).tolist()
        assert {"start_s", "end_s", "turn"} <= set(ipus[0])
    index = _read(tmp_path / "index.csv")
    described = {(r["file"], r["column"]) for r in index}
    for path in tmp_path.glob("*.csv"):
        if path.name == "index.csv":
            continue
        with path.open(encoding="utf-8") as f:
            header = next(csv.reader(f))
        assert {(path.name, c) for c in header} <= described, path.name
    units = {(r["file"], r["column"]): r["unit"] for r in index}
    assert units[("window_series.csv", "agent_loudness")] == "z"
    assert units[("synchrony_pitch_level_agent_follows_customer.csv", "x")] == "st"
    assert units[("ipus_agent.csv", "start_s")] == "s"
    assert "df = n - 2 - q" in (tmp_path / "README.txt").read_text()
    assert {f"proximity_{name}.csv" for name in FEATURES} <= {p.name for p in tmp_path.iterdir()}
    for name in PROSODY_FEATURES:
        assert {f"agent_{name}", f"customer_{name}"} <= set(windows[0])


@pytest.mark.parametrize(
    ("seed", "kw"),
    [
        (7, {"scenario": "converge", "feature": "pitch_level"}),
        (8, {"scenario": "diverge", "feature": "speaking_rate"}),
        (9, {"scenario": "strong_ac"}),
    ],
)
def test_convergence_recomputed_from_the_csvs(
    tmp_path: Path, seed: int, kw: dict[str, str]
) -> None:
    """Each line-based convergence test: the value and p from convergence_<feature>.csv
    alone (numpy + scipy), by the recipe of the README the evidence folder carries."""
    call = simulate_call(
        np.random.default_rng(seed),
        min_duration_s=420.0,
        **kw,  # type: ignore[arg-type]
    )
    evidence = mirroring_evidence(call.agent, call.customer, call.windows)
    evidence.write(tmp_path)
    tests = {(r["feature"], r["test"]): r for r in _read(tmp_path / "tests.csv")}
    recomputed = 0
    for name in PROSODY_FEATURES:
        row = tests[(name, "convergence")]
        if row["file"] != f"convergence_{name}.csv":
            continue
        rows = _read(tmp_path / row["file"])
        fits = []
        for role in ("agent", "customer"):
            mine = [r for r in rows if r["speaker"] == role]
            t = np.array([float(r["start_s"]) for r in mine]) / 60.0
            v = np.array([float(r["value"]) for r in mine])
            phi, share = float(mine[0]["phi"]), float(mine[0]["share"])
            n = v.size
            k = np.arange(n)
            corr = np.where(k == 0, 1.0, share * phi**k)
            sigma = corr[np.abs(k[:, None] - k[None, :])]
            x = np.column_stack([np.ones(n), t])
            si = np.linalg.inv(sigma)
            cov = np.linalg.inv(x.T @ si @ x)
            b = cov @ x.T @ si @ v
            e = v - x @ b
            cov *= float(e @ si @ e) / (n - 2)
            n_eff = n / (1 + 2 * float(np.sum((1 - k[1:] / n) * corr[1:])))
            fits.append((b, cov, n_eff, t[0], t[-1]))
        (ba, ca, na, a0, a1), (bc, cc, nc, c0, c1) = fits
        d0 = (ba - bc) @ [1.0, min(a0, c0)]
        value = -math.copysign(1.0, d0) * (ba[1] - bc[1])
        t_stat = value / math.sqrt(ca[1, 1] + cc[1, 1])
        p = 2 * stats.t.sf(abs(t_stat), max(min(na, nc) - 3, 1))
        assert float(row["value"]) == pytest.approx(value, rel=1e-9)
        assert float(row["p"]) == pytest.approx(p, rel=1e-6, abs=1e-300)
        recomputed += 1
    assert recomputed >= 2  # lines that do not cross: the planted feature, and others


def test_unknown_parameter_is_refused() -> None:
    call = simulate_call(np.random.default_rng(1))
    with pytest.raises(TypeError, match="unexpected parameters: bogus"):
        mirroring_evidence(call.agent, call.customer, call.windows, bogus=1)
    changed = mirroring_evidence(call.agent, call.customer, call.windows, min_exchanges=20)
    assert (
        changed.result.to_dict()
        == analyze_mirroring(call.agent, call.customer, call.windows, min_exchanges=20).to_dict()
    )
