"""The ``mirrorline`` command: analyze calls, export tracks, print the schema, serve the API.

Bad input never prints a traceback: it prints ``error: <code>: <message>`` on stderr and
exits with status 2 (usage errors too). Status 1 means a bug: please report it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dsp.errors import InputError, MirrorlineError, OutputUnwritable

if TYPE_CHECKING:
    from models.params import AnalysisConfig
    from models.report import Report
    from service.batch import BatchPool
    from service.settings import Settings

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".webm", ".mp3", ".m4a", ".aac", ".mp4"}
EXIT_BAD_INPUT = 2


AGENT_CHANNEL_HELP = "channel carrying the agent: 0 (left, default) or 1 (right)"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mirrorline")
    except PackageNotFoundError:
        return "unknown"


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in our one-line format, status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"error: usage: {message} (see `{self.prog} --help`)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mirrorline",
        description="Tone and tempo mirroring in stereo call recordings (agent and customer "
        "on separate channels).",
    )
    parser.add_argument("--version", action="version", version=f"mirrorline {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    analyze = sub.add_parser(
        "analyze",
        help="analyse one call (report JSON) or several (sham-partner baselines across calls)",
    )
    analyze.add_argument("files", nargs="+", help="audio files or folders of audio files")
    analyze.add_argument(
        "--agent-channel", type=int, choices=(0, 1), default=0, help=AGENT_CHANNEL_HELP
    )
    analyze.add_argument("--window-s", type=float, default=30.0, help="window length, s")
    analyze.add_argument("--hop-s", type=float, default=10.0, help="window step, s")
    analyze.add_argument("--min-pause-s", type=float, default=0.2, help="pause that splits IPUs")
    analyze.add_argument(
        "--segment-join-s",
        type=float,
        default=1.0,
        help="pauses shorter than this inside a turn are joined in the report's segments (0: IPUs)",
    )
    analyze.add_argument(
        "--silence-threshold-s", type=float, default=3.0, help="silences listed from this length"
    )
    analyze.add_argument(
        "--backchannel-max-s",
        type=float,
        default=1.0,
        help="longest IPU inside the partner's turn that counts as a backchannel, s",
    )
    analyze.add_argument("--fmin-hz", type=float, default=60.0, help="lowest pitch searched, Hz")
    analyze.add_argument("--fmax-hz", type=float, default=500.0, help="highest pitch searched, Hz")
    analyze.add_argument(
        "-o",
        "--output",
        help="write the report here instead of printing it: a file, or a folder (an existing "
        "one, or a path ending in /) that gets NAME.json; always a folder for several files "
        "or a folder of calls: each report mirrors its call's path (calls/a/x.wav -> "
        "OUT/a/x.json) and OUT/summary.csv has one row per call",
    )
    analyze.add_argument("--csv", help="also write the windows as CSV here (one file only)")
    analyze.add_argument(
        "--evidence",
        metavar="DIR",
        help="also write the rows each mirroring test used as CSV files into DIR (one file "
        "only; DIR/README.txt and DIR/index.csv describe them)",
    )
    analyze.add_argument(
        "--html",
        metavar="FILE",
        help="also write the call report page here: one self-contained HTML file (one file "
        "only; opens offline, can be mailed)",
    )
    analyze.add_argument(
        "--verbal",
        action="store_true",
        help="also recognise words (English) in each channel's speech and report verbal "
        "mirroring: echoes, echo questions, lexical mirroring (needs pip install "
        "'mirrorline[verbal]'; slow: docs/verbal.md)",
    )
    analyze.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    analyze.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="a batch analyses N calls at once, in N processes (default: the cores this "
        "process may use); memory about N calls' worth; the reports do not change",
    )
    analyze.add_argument(
        "--threads",
        type=int,
        choices=(1, 2),
        default=None,
        help="threads for the per-channel stage (default 2 on 2+ cores; same result)",
    )

    tracks = sub.add_parser("tracks", help="export frame-level tracks (10 ms) as CSV")
    tracks.add_argument("file")
    tracks.add_argument("-o", "--output", required=True, help="CSV file to write ('-': stdout)")
    tracks.add_argument(
        "--agent-channel", type=int, choices=(0, 1), default=0, help=AGENT_CHANNEL_HELP
    )

    sub.add_parser("schema", help="print the report's JSON Schema")

    replay = sub.add_parser(
        "replay",
        help="stream a stereo recording to a live-stream endpoint as a call platform would "
        "(docs/live.md)",
    )
    replay.add_argument("file", help="a stereo call recording")
    replay.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="the server, ws://host:port (the protocol's path is added) or a full ws:// URL",
    )
    replay.add_argument(
        "--protocol", choices=("twilio", "audiohook", "raw"), default="twilio", help="(twilio)"
    )
    replay.add_argument(
        "--speed",
        default="1",
        help="times real time, or 'max' (as fast as the connection goes); default 1",
    )
    replay.add_argument("--id", default=None, help="the call id (default: from the file name)")
    replay.add_argument("--token", default=None, help="API key (sent as a header)")
    replay.add_argument(
        "--agent-channel",
        type=int,
        choices=(0, 1),
        default=0,
        help="channel of the agent in the file (default 0); sent as the protocol says it",
    )

    sub.add_parser(
        "worker",
        help="run analysis jobs from the shared queue (multi-node mode: needs "
        "MIRRORLINE_DATABASE_URL; docs/deploy.md)",
    )

    serve = sub.add_parser("serve", help="run the HTTP API under uvicorn")
    serve.add_argument("--host", default=None, help="interface (default from settings)")
    serve.add_argument("--port", type=int, default=None, help="port (default from settings)")
    return parser


def _audio_in(folder: Path) -> list[Path]:
    """Audio files in ``folder`` and its subfolders (hidden ones left out), sorted by path."""
    found = [
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in AUDIO_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


def _expand(paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    """The files to analyse (folders searched with their subfolders; a file given twice is
    analysed once) and each one's name relative to the folder all inputs share: the folder
    given, or for files the folder that holds them all (``a/x.wav b/x.wav``: ``a/x.wav``
    and ``b/x.wav``)."""
    files: list[Path] = []
    bases: list[str] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = _audio_in(path)
            if not found:
                raise InputError(
                    f"{path} holds no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})"
                )
            bases.append(os.path.abspath(path))
        else:
            found = [path]
            bases.append(os.path.dirname(os.path.abspath(path)))
        for file in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                files.append(file)
    common = os.path.commonpath(bases)
    names = [Path(os.path.relpath(os.path.abspath(f), common)).as_posix() for f in files]
    return files, names


def _config(args: argparse.Namespace) -> AnalysisConfig:
    from pydantic import ValidationError

    from dsp.errors import ParameterError
    from models.params import AnalysisConfig

    try:
        return AnalysisConfig(
            agent_channel=args.agent_channel,
            window_s=args.window_s,
            hop_s=args.hop_s,
            min_pause_s=args.min_pause_s,
            segment_join_s=args.segment_join_s,
            silence_threshold_s=args.silence_threshold_s,
            backchannel_max_s=args.backchannel_max_s,
            fmin_hz=args.fmin_hz,
            fmax_hz=args.fmax_hz,
            verbal=args.verbal,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "parameters"
        raise ParameterError(f"{where}: {first['msg']}") from None


def _writable(path: Path) -> Path:
    """``path`` when a file can be written there (checked by opening it, so permissions,
    read-only mounts and missing folders all show), else ``OutputUnwritable``. A file the
    check creates is removed again."""
    if path.is_dir():
        raise OutputUnwritable(f"{path} is a folder; give the path of a file to write")
    existed = path.exists()
    try:
        with path.open("a"):
            pass
    except OSError as exc:
        raise OutputUnwritable(f"cannot write {path}: {exc.strerror or exc}") from None
    if not existed:
        path.unlink(missing_ok=True)
    return path


def _writable_dir(path: Path) -> Path:
    """``path`` as a folder files can be written into (made when missing)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputUnwritable(f"cannot make the folder {path}: {exc.strerror or exc}") from None
    _writable(path / f".mirrorline-write-check-{os.getpid()}")
    return path


def _is_dir_target(raw: str) -> bool:
    return raw.endswith(("/", os.sep)) or Path(raw).is_dir()


def _report_names(names: Sequence[str]) -> list[str]:
    """One distinct report path per input, mirroring its relative name: ``a/x.wav`` gives
    ``a/x.json``. Names that would still meet (``x.wav`` and ``x.flac``; ``X.wav`` and
    ``x.wav`` on a case-blind disk) keep their suffix (``x.wav.json``, ``x.flac.json``), and
    a number after that if needed: no report overwrites another."""
    stems = [str(Path(name).with_suffix("")) for name in names]
    counts: dict[str, int] = {}
    for stem in stems:
        counts[stem.lower()] = counts.get(stem.lower(), 0) + 1
    used: set[str] = set()
    out = []
    for name, stem in zip(names, stems, strict=True):
        base = stem if counts[stem.lower()] == 1 else name
        candidate, n = f"{base}.json", 1
        while candidate.lower() in used:
            n += 1
            candidate = f"{base}-{n}.json"
        used.add(candidate.lower())
        out.append(candidate)
    return out


SUMMARY_NAME = "summary.csv"
INDEX_NAME = "index.html"


def _write_pages(
    out_dir: Path,
    names: Sequence[str],
    report_names: Sequence[str],
    reports: Sequence[Report],
    pool: BatchPool,
) -> None:
    """A batch's pages: each call's page beside its report (``a/x.json``: ``a/x.html``) and
    ``index.html`` linking them all."""
    from service.batch import render_pages
    from service.report_page import render_batch_index

    pages = [str(Path(name).with_suffix(".html")) for name in report_names]
    for page, html in zip(pages, render_pages(reports, pool), strict=True):
        (out_dir / page).write_text(html, encoding="utf-8")
    index = render_batch_index(list(zip(names, pages, reports, strict=True)))
    (out_dir / INDEX_NAME).write_text(index, encoding="utf-8")


def _cmd_analyze(args: argparse.Namespace) -> int:
    from service.analysis import analyze_path, analyze_path_with_evidence, windows_csv
    from service.batch import BatchPool, analyze_batch, batch_pool, default_jobs
    from service.summary_csv import batch_summary

    config = _config(args)
    if config.verbal:
        from dsp.verbal import require_recognizer

        require_recognizer()  # before any output is touched or audio decoded
    files, names = _expand(args.files)
    batch = len(files) > 1 or any(Path(raw).is_dir() for raw in args.files)
    progress = not args.no_progress and sys.stderr.isatty()
    if len(files) > 1 and args.csv:
        raise InputError("--csv takes one file; with several files use -o FOLDER")
    if len(files) > 1 and args.evidence:
        raise InputError("--evidence takes one file")
    if len(files) > 1 and args.html:
        raise InputError("--html takes one file")
    # Every output is checked before the analysis: a typo must not cost a long run.
    csv_path = _writable(Path(args.csv)) if args.csv else None
    evidence_dir = _writable_dir(Path(args.evidence)) if args.evidence else None
    html_path = _writable(Path(args.html)) if args.html else None
    report_path: Path | None = None
    out_dir: Path | None = None
    if args.output and args.output != "-" and (batch or _is_dir_target(args.output)):
        out_dir = _writable_dir(Path(args.output))
    elif args.output and args.output != "-":
        report_path = _writable(Path(args.output))
    report_names = _report_names(names)
    if out_dir is not None:
        for folder in sorted({(out_dir / name).parent for name in report_names}):
            _writable_dir(folder)
        if batch:
            _writable(out_dir / SUMMARY_NAME)
            _writable(out_dir / INDEX_NAME)
    if len(files) == 1:
        if evidence_dir is not None:
            report, evidence = analyze_path_with_evidence(
                files[0], config, progress=progress, workers=args.threads
            )
            evidence.write(evidence_dir)
        else:
            report = analyze_path(files[0], config, progress=progress, workers=args.threads)
        text = report.model_dump_json(indent=2)
        if csv_path is not None:
            csv_path.write_text(windows_csv(report))
        if html_path is not None:
            from service.report_page import render_report_html

            html_path.write_text(render_report_html(report), encoding="utf-8")
        if out_dir is not None:
            report_path = out_dir / report_names[0]
        if report_path is not None:
            report_path.write_text(text + "\n")
        else:
            sys.stdout.write(text + "\n")
        if out_dir is not None and batch:
            (out_dir / SUMMARY_NAME).write_text(batch_summary([report], names, report_names))
            _write_pages(out_dir, names, report_names, [report], BatchPool(None, 1))
        return 0
    jobs = default_jobs() if args.jobs is None else args.jobs
    with batch_pool(jobs, len(files)) as pool:
        reports = analyze_batch(files, config, pool=pool, progress=progress, workers=args.threads)
        if out_dir is not None:
            for name, report in zip(report_names, reports, strict=True):
                (out_dir / name).write_text(report.model_dump_json(indent=2) + "\n")
            (out_dir / SUMMARY_NAME).write_text(batch_summary(reports, names, report_names))
            _write_pages(out_dir, names, report_names, reports, pool)
        else:
            for report in reports:
                sys.stdout.write(report.model_dump_json() + "\n")
    return 0


def _cmd_tracks(args: argparse.Namespace) -> int:
    from service.analysis import tracks_csv

    target = None if args.output == "-" else _writable(Path(args.output))
    text = tracks_csv(Path(args.file), agent_channel=args.agent_channel)
    if target is None:
        sys.stdout.write(text)
    else:
        target.write_text(text)
    return 0


def _cmd_schema(_: argparse.Namespace) -> int:
    from models.report import Report

    sys.stdout.write(json.dumps(Report.model_json_schema(), indent=2) + "\n")
    return 0


def _settings() -> Settings:
    from pydantic import ValidationError

    from dsp.errors import ParameterError
    from service.settings import get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:  # a bad MIRRORLINE_* variable: say which, start nothing
        first = exc.errors()[0]
        if not first["loc"]:  # a rule across settings: its message names them
            raise ParameterError(str(first["msg"]).removeprefix("Value error, ")) from None
        name = "MIRRORLINE_" + ".".join(str(x) for x in first["loc"]).upper()
        raise ParameterError(f"{name}: {first['msg']}") from None
    import importlib.util

    if settings.database_url is not None and not all(
        importlib.util.find_spec(m) for m in ("psycopg", "procrastinate")
    ):
        raise ParameterError(
            "MIRRORLINE_DATABASE_URL (multi-node mode) needs the postgres extra: "
            "pip install 'mirrorline[postgres]'"
        )
    if settings.audio_store_url is not None:  # the s3 extra, and a bucket that answers
        from service.s3audio import open_audio_store

        open_audio_store(settings.audio_store_url)
    return settings


def _cmd_serve(args: argparse.Namespace) -> int:
    from service.server import run

    _settings()
    run(host=args.host, port=args.port)
    return 0


def _cmd_worker(_: argparse.Namespace) -> int:
    import asyncio

    from dsp.errors import ParameterError
    from service import datadir, logs

    settings = _settings()
    if settings.database_url is None:
        raise ParameterError(
            "mirrorline worker runs jobs from the shared queue: set MIRRORLINE_DATABASE_URL="
            "postgresql://... (the embedded mode needs no worker: `mirrorline serve` runs them)"
        )
    datadir.acquire(settings.data_dir)  # its local copies of job audio
    logs.configure(settings.log_level)
    from service.queue import run_worker

    asyncio.run(run_worker(settings))
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    import re

    import numpy as np

    from dsp.io import decode
    from service import replay

    speed = None if args.speed == "max" else float(args.speed)
    if speed is not None and speed <= 0:
        raise InputError("--speed must be a positive number or 'max'")
    rate = 16000 if args.protocol == "raw" else 8000
    audio = decode(args.file, max_rate_hz=rate)
    samples = np.round(np.clip(audio.samples, -1, 1) * 32767).astype(np.int16)
    call_id = args.id or re.sub(r"[^A-Za-z0-9_.:-]", "-", Path(args.file).stem)[:128]
    base = args.to.rstrip("/")
    path = f"/v1/streams/{args.protocol}"
    url = base if base.endswith(path) else base + path
    per_message: float
    messages: list[str | bytes]
    if args.protocol == "twilio":
        # channel 0 inbound, 1 outbound; the agent's track said in agent_track
        track = "inbound" if args.agent_channel == 0 else "outbound"
        messages = list(replay.twilio_messages(samples, call_id, custom={"agent_track": track}))
        per_message = 0.01  # 20 ms of two tracks
    elif args.protocol == "audiohook":
        # external (customer) first, internal (agent) second
        ordered = samples if args.agent_channel == 1 else samples[::-1].copy()
        messages = replay.audiohook_messages(ordered, call_id, frame_ms=100)
        per_message = 0.1
    else:
        messages = replay.raw_messages(
            samples, call_id, sample_rate_hz=audio.sample_rate_hz, agent_channel=args.agent_channel
        )
        per_message = 0.02
    headers = [("Authorization", f"Bearer {args.token}")] if args.token else []
    code, reason, replies = replay.send(
        url,
        messages,
        headers=headers,
        realtime_s_per_message=0.0 if speed is None else per_message / speed,
    )
    for reply in replies:
        sys.stdout.write(reply + "\n")
    sys.stdout.write(json.dumps({"id": call_id, "close_code": code, "close_reason": reason}) + "\n")
    return 0 if code == 1000 else EXIT_BAD_INPUT


COMMANDS = {
    "analyze": _cmd_analyze,
    "tracks": _cmd_tracks,
    "schema": _cmd_schema,
    "serve": _cmd_serve,
    "worker": _cmd_worker,
    "replay": _cmd_replay,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except InputError as exc:
        sys.stderr.write(f"error: {exc.code}: {exc.message}\n")
        return EXIT_BAD_INPUT
    except MirrorlineError as exc:  # not the caller's fault: a store unreachable, a schema
        sys.stderr.write(f"error: {exc.code}: {exc.message}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"error: output.unwritable: {exc.strerror or exc}: {exc.filename}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
