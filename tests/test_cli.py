"""The `mirrorline` command as users run it: a real subprocess, real files."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.audiofiles import two_tone, write_audio

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "ami_two_party_8k_ulaw.wav"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def _bad_inputs(tmp: Path) -> dict[str, tuple[Path, str]]:
    empty = tmp / "empty.wav"
    empty.write_bytes(b"")
    text = tmp / "notes.wav"
    text.write_text("not audio\n" * 100)
    full = write_audio(tmp / "full.wav", two_tone(8000, 2.0), 8000)
    cut = tmp / "cut.wav"
    cut.write_bytes(full.read_bytes()[:20000])
    nan = two_tone(8000, 1.0)
    nan[0, 100] = np.inf
    return {
        "missing": (tmp / "nope.wav", "input.not_found"),
        "empty": (empty, "audio.empty"),
        "text": (text, "audio.undecodable"),
        "truncated": (cut, "audio.truncated"),
        "mono": (write_audio(tmp / "mono.wav", two_tone(8000, 1.0)[:1], 8000), "audio.not_stereo"),
        "three": (
            write_audio(tmp / "three.wav", np.vstack([two_tone(8000, 1.0)] * 2)[:3], 8000),
            "audio.too_many_channels",
        ),
        "short": (write_audio(tmp / "short.wav", two_tone(8000, 0.3), 8000), "audio.too_short"),
        "nonfinite": (
            write_audio(tmp / "nan.wav", nan, 8000, codec="pcm_f32le"),
            "audio.non_finite",
        ),
    }


@pytest.mark.parametrize(
    "case", ["missing", "empty", "text", "truncated", "mono", "three", "short", "nonfinite"]
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, case: str) -> None:
    path, code = _bad_inputs(tmp_path)[case]
    out = run_cli("analyze", str(path))
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"error: {code}: ")
    assert "Traceback" not in out.stderr


def test_usage_error_is_one_line_status_2() -> None:
    out = run_cli("analyze", str(SAMPLE), "--agent-channel", "3")
    assert out.returncode == 2
    assert out.stderr.startswith("error: usage: ")
    out = run_cli("analyze", str(SAMPLE), "--window-s", "10", "--hop-s", "20")
    assert out.returncode == 2 and out.stderr.startswith("error: config.invalid: ")


def test_analyze_sample_prints_report(tmp_path: Path) -> None:
    out = run_cli("analyze", str(SAMPLE))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["audio"]["sample_rate_hz"] == 8000
    assert report["audio"]["codec"] == "pcm_mulaw"
    assert report["roles"] == {"agent_channel": 0, "customer_channel": 1}
    for role in ("agent", "customer"):
        assert report["speakers"][role]["talk_time_s"] > 5
        assert report["segments"][role]
    # the 40 s sample has too few exchanges for synchrony: each null says why, in the report
    skipped = {item["metric"]: item["reason"] for item in report["skipped"]}
    for name, feature in report["mirroring"]["features"].items():
        for direction in ("agent_follows_customer", "customer_follows_agent"):
            if feature["synchrony"][direction]["r"] is None:
                reason = skipped[f"mirroring.features.{name}.synchrony.{direction}"]
                assert "exchanges" in reason
    # swapping roles swaps the speakers
    swapped = json.loads(run_cli("analyze", str(SAMPLE), "--agent-channel", "1").stdout)
    assert (
        swapped["speakers"]["agent"]["talk_time_s"] == report["speakers"]["customer"]["talk_time_s"]
    )


def test_output_file_and_windows_csv(tmp_path: Path) -> None:
    report_path, csv_path = tmp_path / "r.json", tmp_path / "w.csv"
    out = run_cli(
        "analyze",
        str(SAMPLE),
        "-o",
        str(report_path),
        "--csv",
        str(csv_path),
        "--window-s",
        "20",
        "--hop-s",
        "5",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    report = json.loads(report_path.read_text())
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert len(rows) == len(report["windows"]) >= 4
    assert rows[1]["start_s"] == "5.0"
    assert report["config"]["window_s"] == 20.0


def test_tracks_csv(tmp_path: Path) -> None:
    target = tmp_path / "tracks.csv"
    out = run_cli("tracks", str(SAMPLE), "-o", str(target))
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert list(rows[0]) == [
        "time_s",
        "agent_f0_hz",
        "customer_f0_hz",
        "agent_level_db",
        "customer_level_db",
        "agent_speech",
        "customer_speech",
    ]
    assert abs(len(rows) - 4250) <= 2  # 42.5 s at 10 ms
    voiced = [float(r["agent_f0_hz"]) for r in rows if r["agent_f0_hz"]]
    assert len(voiced) > 200
    assert 120 < float(np.median(voiced)) < 350  # a female speaker
    assert all(r["agent_speech"] == "1" for r in rows if r["agent_f0_hz"])


def test_schema_command() -> None:
    out = run_cli("schema")
    assert out.returncode == 0
    schema = json.loads(out.stdout)
    assert "speakers" in schema["properties"]


def test_batch_folder_writes_one_report_per_call(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    for name in ("a.wav", "b.wav"):
        (calls / name).write_bytes(SAMPLE.read_bytes())
    (calls / "notes.txt").write_text("not a call")
    out_dir = tmp_path / "reports"
    out = run_cli("analyze", str(calls), "-o", str(out_dir), "--no-progress")
    assert out.returncode == 0, out.stderr
    reports = sorted(out_dir.glob("*.json"))
    assert [p.name for p in reports] == ["a.json", "b.json"]
    first = json.loads(reports[0].read_text())
    assert first["source"] == "a.wav"
    assert first["mirroring"] is not None and first["skipped"]  # listed after batch mirroring
    # without -o: one JSON document per line
    lines = run_cli("analyze", str(calls / "a.wav"), str(calls / "b.wav")).stdout.splitlines()
    assert [json.loads(line)["source"] for line in lines] == ["a.wav", "b.wav"]


def test_batch_jobs_give_the_same_outputs(tmp_path: Path) -> None:
    """Calls analysed in parallel processes (--jobs) give byte-identical reports, pages and
    summary to one at a time."""
    calls = tmp_path / "calls"
    for i in range(4):
        _short_call(calls / f"c{i}.wav", seed=i)
    outs = {}
    for jobs in ("1", "3"):
        outs[jobs] = tmp_path / f"out{jobs}"
        out = run_cli("analyze", str(calls), "-o", str(outs[jobs]), "--jobs", jobs)
        assert out.returncode == 0, out.stderr
    files = sorted(p.relative_to(outs["1"]) for p in outs["1"].rglob("*") if p.is_file())
    assert len(files) == 4 * 2 + 2  # reports, pages, summary.csv, index.html
    for name in files:
        assert (outs["3"] / name).read_bytes() == (outs["1"] / name).read_bytes(), name


def test_batch_jobs_bad_call_is_one_error_line(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    _short_call(calls / "good.wav")
    (calls / "bad.wav").write_text("not audio\n" * 100)
    _one_error_line(run_cli("analyze", str(calls), "--jobs", "2"), "audio.undecodable")
    _one_error_line(run_cli("analyze", str(calls), "--jobs", "0"), "usage")


def test_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    out = run_cli("analyze", str(tmp_path))
    assert out.returncode == 2 and out.stderr.startswith("error: input.invalid: ")


# -- hardening: outputs, flags, codes ------------------------------------------------------


def _short_call(path: Path, seed: int = 0) -> Path:
    from tests.service.audio import stereo_wav

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(stereo_wav(6.0, seed=seed))
    return path


def _one_error_line(out: subprocess.CompletedProcess[str], code: str) -> None:
    assert out.returncode == 2, out
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {code}: "), out.stderr


def test_output_folder_with_one_file(tmp_path: Path) -> None:
    call = _short_call(tmp_path / "in" / "call.wav")
    out = run_cli("analyze", str(call), "-o", f"{tmp_path / 'new'}/", "--no-progress")
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "new" / "call.json").read_text())["source"] == "call.wav"
    existing = tmp_path / "existing"
    existing.mkdir()
    assert run_cli("analyze", str(call), "-o", str(existing)).returncode == 0
    assert [p.name for p in existing.iterdir()] == ["call.json"]


def test_same_names_in_a_batch_get_distinct_reports(tmp_path: Path) -> None:
    first = _short_call(tmp_path / "a" / "x.wav", seed=1)
    second = _short_call(tmp_path / "b" / "x.wav", seed=2)
    out = run_cli("analyze", str(first), str(second), "-o", str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # no progress bars when stderr is not a terminal
    # each report mirrors its call's path under the folder both share
    names = sorted(p.relative_to(tmp_path / "out").as_posix() for p in _files(tmp_path / "out"))
    assert names == ["a/x.html", "a/x.json", "b/x.html", "b/x.json", "index.html", "summary.csv"]
    durations = {
        json.loads((tmp_path / "out" / n).read_text())["speakers"]["agent"]["talk_time_s"]
        for n in ("a/x.json", "b/x.json")
    }
    assert len(durations) == 2  # two different calls, neither overwritten
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "summary.csv").read_text())))
    assert [(r["file"], r["report"]) for r in rows] == [
        ("a/x.wav", "a/x.json"),
        ("b/x.wav", "b/x.json"),
    ]


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_folder_with_subfolders_mirrors_its_tree(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    for i, name in enumerate(["x.wav", "mon/x.wav", "mon/late/x.wav", "tue/x.wav", "tue/x.flac"]):
        _short_call(calls / name, seed=i)
    _short_call(calls / ".trash" / "old.wav", seed=9)  # hidden: not a call of the batch
    (calls / "tue" / "notes.txt").write_text("not a call")
    out_dir = tmp_path / "out"
    out = run_cli("analyze", str(calls), "-o", str(out_dir), "--no-progress")
    assert out.returncode == 0, out.stderr
    written = sorted(p.relative_to(out_dir).as_posix() for p in _files(out_dir))
    # x.wav and x.flac in one folder would both be x.json: they keep their suffix
    # each report with its page beside it (service.report_page), and the batch's index
    assert written == [
        "index.html",
        "mon/late/x.html",
        "mon/late/x.json",
        "mon/x.html",
        "mon/x.json",
        "summary.csv",
        "tue/x.flac.html",
        "tue/x.flac.json",
        "tue/x.wav.html",
        "tue/x.wav.json",
        "x.html",
        "x.json",
    ]
    rows = list(csv.DictReader(io.StringIO((out_dir / "summary.csv").read_text())))
    assert [r["file"] for r in rows] == [
        "mon/late/x.wav",
        "mon/x.wav",
        "tue/x.flac",
        "tue/x.wav",
        "x.wav",
    ]
    talk = {r["report"]: r["agent_talk_ratio"] for r in rows}
    for name, ratio in talk.items():
        report = json.loads((out_dir / name).read_text())
        assert float(ratio) == report["speakers"]["agent"]["talk_ratio"]
    assert len(set(talk.values())) == 5  # five different calls, five different reports
    # the same folder given twice is one batch of five calls, not ten
    again = run_cli("analyze", str(calls), f"{calls}/", "-o", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    assert len((tmp_path / "again" / "summary.csv").read_text().splitlines()) == 1 + 5


def test_a_folder_of_one_call_is_still_a_batch(tmp_path: Path) -> None:
    _short_call(tmp_path / "calls" / "day1" / "only.wav")
    out = run_cli("analyze", str(tmp_path / "calls"), "-o", str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in _files(tmp_path / "out"))
    assert written == ["day1/only.html", "day1/only.json", "index.html", "summary.csv"]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "summary.csv").read_text())))
    assert [(r["file"], r["report"]) for r in rows] == [("day1/only.wav", "day1/only.json")]


def _json_path(report: dict[str, Any], path: str) -> Any:
    value: Any = report
    for key in path.split("."):
        value = None if value is None else value[key]
    return value


def _summary_column_paths() -> dict[str, str]:
    """Each summary.csv column and the report field it must show, written out by hand."""
    paths = {"duration_s": "audio.duration_s", "detectable_r": "mirroring.detectable_r"}
    for role in ("agent", "customer"):
        paths[f"{role}_talk_ratio"] = f"speakers.{role}.talk_ratio"
        for dim in ("tone", "tempo"):
            for field in ("score", "verdict", "r", "r_low", "r_high"):
                paths[f"{dim}_{role}_{field}"] = f"mirroring.scores.{dim}.{role}.{field}"
    for feature in (
        "pitch_level",
        "pitch_variability",
        "loudness",
        "speaking_rate",
        "articulation_rate",
        "pause",
        "latency",
    ):
        base = f"mirroring.features.{feature}"
        paths[f"{feature}_mirrored"] = f"{base}.mirrored"
        paths[f"{feature}_follower"] = f"{base}.follower"
        paths[f"{feature}_convergence"] = f"{base}.convergence.direction"
    for role in ("agent", "customer"):
        for field in ("echoes", "echo_questions", "echoes_per_10_partner_turns"):
            paths[f"{role}_{field}"] = f"verbal.speakers.{role}.{field}"
    paths["lexical_mirrored"] = "verbal.lexical.mirrored"
    return paths


def test_batch_summary_csv_rows_are_the_reports(tmp_path: Path) -> None:
    from tests.service.audio import call_samples, wav_bytes

    calls = tmp_path / "calls"
    calls.mkdir()
    for i in range(3):  # two minutes each: long enough for directional scores
        (calls / f"call{i}.wav").write_bytes(wav_bytes(call_samples(120.0, seed=i)))
    out_dir = tmp_path / "out"
    out = run_cli("analyze", str(calls), "-o", str(out_dir), "--no-progress")
    assert out.returncode == 0, out.stderr
    text = (out_dir / "summary.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 3
    paths = _summary_column_paths()
    header = text.splitlines()[0].split(",")
    # the documented columns, in their documented order (changing them breaks users' sheets)
    scores = [c for c in paths if c.startswith(("tone_", "tempo_"))]
    scores.sort(key=lambda c: (c.split("_")[0] != "tone", c.split("_")[1] != "agent"))
    verbal = [c for c in paths if c.startswith(("agent_echo", "customer_echo", "lexical_"))]
    features = [
        c
        for c in paths
        if c.endswith(("_mirrored", "_follower", "_convergence")) and c not in verbal
    ]
    assert header == [
        "file",
        "report",
        "duration_s",
        "agent_talk_ratio",
        "customer_talk_ratio",
        *scores,
        "detectable_r",
        "warnings",
        *features,
        *verbal,
    ]
    assert scores[:5] == [f"tone_agent_{f}" for f in ("score", "verdict", "r", "r_low", "r_high")]
    docs = (REPO / "docs" / "report.md").read_text()
    assert "`summary.csv`" in docs
    for column in header:  # every column is documented by its name
        assert f"`{column}`" in docs, column
    checked_numbers = 0
    for row in rows:
        report = json.loads((out_dir / row["report"]).read_text())
        assert row["file"] == report["source"]
        assert row["warnings"].split() == [w["code"] for w in report["warnings"]]
        for column, path in paths.items():
            value = _json_path(report, path)
            if value is None:
                assert row[column] == "", (column, row[column])
            elif isinstance(value, bool):
                assert row[column] == str(value).lower(), column
            elif isinstance(value, float):
                assert float(row[column]) == value, column
                checked_numbers += 1
            else:
                assert row[column] == str(value), column
    assert checked_numbers >= 3 * 20  # the scores were there to compare, not all empty


def test_tracks_to_stdout(tmp_path: Path) -> None:
    call = _short_call(tmp_path / "call.wav")
    out = subprocess.run(
        [sys.executable, "-m", "service.cli", "tracks", str(call), "-o", "-"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("time_s,agent_f0_hz,")
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("flag", ["--csv", "-o"])
def test_unwritable_output_fails_before_analysing(tmp_path: Path, flag: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = run_cli("analyze", str(SAMPLE), flag, str(blocker / "out.csv"))
    _one_error_line(out, "output.unwritable")
    assert "Traceback" not in out.stderr


def test_version_help_and_pitch_flags(tmp_path: Path) -> None:
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("mirrorline ")
    helptext = run_cli("analyze", "--help").stdout
    for flag in ("--fmin-hz", "--fmax-hz", "--backchannel-max-s"):
        assert flag in helptext
    assert "channel carrying the agent" in helptext
    call = _short_call(tmp_path / "call.wav")
    out = run_cli(
        "analyze", str(call), "--fmin-hz", "80", "--fmax-hz", "400", "--backchannel-max-s", "0.5"
    )
    assert out.returncode == 0, out.stderr
    config = json.loads(out.stdout)["config"]
    assert (config["fmin_hz"], config["fmax_hz"], config["backchannel_max_s"]) == (80, 400, 0.5)
    _one_error_line(run_cli("analyze", str(call), "--fmin-hz", "600"), "config.invalid")
    _one_error_line(run_cli("analyze", str(call), "--window-s", "-1"), "config.invalid")


def test_sample_rate_error_matches_the_readme(tmp_path: Path) -> None:
    low = write_audio(tmp_path / "low.wav", two_tone(4000, 2.0, (300.0, 700.0)), 4000)
    out = run_cli("analyze", str(low))
    _one_error_line(out, "audio.bad_sample_rate")
    assert "8000-192000 Hz" in out.stderr
    assert "at 8-192 kHz" in (REPO / "README.md").read_text()
