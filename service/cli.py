"""The ``mirrorline`` command: analyze calls, export tracks, print the schema, serve the API.

Bad input never prints a traceback: it prints ``error: <code>: <message>`` on stderr and
exits with status 2 (usage errors too). Status 1 means a bug: please report it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dsp.errors import InputError

if TYPE_CHECKING:
    from models.params import AnalysisConfig

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".webm", ".mp3", ".m4a", ".aac", ".mp4"}
EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in our one-line format, status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"error: usage: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mirrorline",
        description="Tone and tempo mirroring in stereo call recordings (agent and customer "
        "on separate channels).",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    analyze = sub.add_parser(
        "analyze",
        help="analyse one call (report JSON) or several (sham-partner baselines across calls)",
    )
    analyze.add_argument("files", nargs="+", help="audio files or folders of audio files")
    analyze.add_argument("--agent-channel", type=int, choices=(0, 1), default=0)
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
        "-o",
        "--output",
        help="write the report here (a folder when several files are analysed) "
        "instead of printing it",
    )
    analyze.add_argument("--csv", help="also write the windows as CSV here (one file only)")
    analyze.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    analyze.add_argument(
        "--threads",
        type=int,
        choices=(1, 2),
        default=None,
        help="threads for the per-channel stage (default 2 on 2+ cores; same result)",
    )

    tracks = sub.add_parser("tracks", help="export frame-level tracks (10 ms) as CSV")
    tracks.add_argument("file")
    tracks.add_argument("-o", "--output", required=True, help="CSV file to write")
    tracks.add_argument("--agent-channel", type=int, choices=(0, 1), default=0)

    sub.add_parser("schema", help="print the report's JSON Schema")

    serve = sub.add_parser("serve", help="run the HTTP API under uvicorn")
    serve.add_argument("--host", default=None, help="interface (default from settings)")
    serve.add_argument("--port", type=int, default=None, help="port (default from settings)")
    return parser


def _expand(paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise InputError(
                    f"{path} holds no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})"
                )
            files.extend(found)
        else:
            files.append(path)
    return files


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
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "parameters"
        raise ParameterError(f"{where}: {first['msg']}") from None


def _cmd_analyze(args: argparse.Namespace) -> int:
    from service.analysis import analyze_batch, analyze_path, windows_csv

    config = _config(args)
    files = _expand(args.files)
    progress = not args.no_progress and sys.stderr.isatty()
    if len(files) == 1:
        report = analyze_path(files[0], config, progress=progress, workers=args.threads)
        text = report.model_dump_json(indent=2)
        if args.output:
            Path(args.output).write_text(text + "\n")
        else:
            sys.stdout.write(text + "\n")
        if args.csv:
            Path(args.csv).write_text(windows_csv(report))
        return 0
    if args.csv:
        raise InputError("--csv takes one file; with several files use -o FOLDER")
    reports = analyze_batch(files, config, progress=not args.no_progress, workers=args.threads)
    if args.output:
        out_dir = Path(args.output)
        out_dir.mkdir(parents=True, exist_ok=True)
        for path, report in zip(files, reports, strict=True):
            (out_dir / f"{path.stem}.json").write_text(report.model_dump_json(indent=2) + "\n")
    else:
        for report in reports:
            sys.stdout.write(report.model_dump_json() + "\n")
    return 0


def _cmd_tracks(args: argparse.Namespace) -> int:
    from service.analysis import tracks_csv

    Path(args.output).write_text(tracks_csv(Path(args.file), agent_channel=args.agent_channel))
    return 0


def _cmd_schema(_: argparse.Namespace) -> int:
    from models.report import Report

    sys.stdout.write(json.dumps(Report.model_json_schema(), indent=2) + "\n")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from service.server import run

    run(host=args.host, port=args.port)
    return 0


COMMANDS = {
    "analyze": _cmd_analyze,
    "tracks": _cmd_tracks,
    "schema": _cmd_schema,
    "serve": _cmd_serve,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except InputError as exc:
        sys.stderr.write(f"error: {exc.code}: {exc.message}\n")
        return EXIT_BAD_INPUT
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
