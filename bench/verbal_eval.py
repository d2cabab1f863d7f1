"""Echoes, echo questions and lexical mirroring found on espeak telephone calls with known
truth (bench/make_verbal_calls.py), and the cost of the verbal step.

    python bench/make_verbal_calls.py CALLS --n 4 --turns 36 --workers 2
    python bench/verbal_eval.py CALLS [--workers 2] [--dump DIR] [--text-only]

An echo found is right when it lies in a turn whose text repeats content words of the end
of the partner's turn (planted or by chance: the truth's ``echo_words``); recall counts the
true echoes found, precision the echoes found that are true. Echo-question recall: true
echo questions found as echo questions. Lexical mirroring: the share of calls with
``mirrored`` true, which on the calls without planted echoes is the false-alarm rate. Also
printed: how the final pitch rise alone separates echo questions from other turns, and the
recogniser's cost per hour of call. Needs the verbal extra, except with ``--text-only``,
which runs the same rules on the words of the text (what a recogniser that makes no
mistake would give) to separate the rules' errors from the recogniser's.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dsp import pipeline  # noqa: E402
from dsp.params import AnalysisParams  # noqa: E402
from dsp.verbal.echoes import QUESTION_MAX_S, RISE_ST, final_rise_st, find_echoes  # noqa: E402
from dsp.verbal.lexical import lexical_mirroring  # noqa: E402
from dsp.verbal.recognize import Word  # noqa: E402
from dsp.verbal.turns import VerbalTurn  # noqa: E402


def _turn_of(turns: list[dict[str, Any]], speaker: int, t_s: float) -> int | None:
    """The truth turn of ``speaker`` that a detected turn starting at ``t_s`` falls in."""
    for i, t in enumerate(turns):
        if t["speaker"] == speaker and t["start_s"] - 0.5 <= t_s <= t["end_s"]:
            return i
    return None


def text_turns(turns: list[dict[str, Any]]) -> list[VerbalTurn]:
    """The truth's turns with the words of their text spread evenly over them: what the
    echo rule sees from a recogniser that makes no mistake."""
    out = []
    for t in turns:
        words = " ".join(t["sentences"]).replace(".", " ").replace("?", " ").lower().split()
        step = (t["end_s"] - t["start_s"]) / max(len(words), 1)
        out.append(
            VerbalTurn(
                t["speaker"],
                t["start_s"],
                t["end_s"],
                tuple(
                    Word(w, t["start_s"] + i * step, t["start_s"] + (i + 1) * step)
                    for i, w in enumerate(words)
                ),
            )
        )
    return out


def evaluate(path: Path, dump: Path | None = None, text_only: bool = False) -> dict[str, Any]:
    truth = json.loads(path.with_suffix(".json").read_text())
    turns = truth["turns"]
    result = pipeline.analyze(path, AnalysisParams(), mirror=False)
    f0 = [result.speakers[role].f0_hz for role in pipeline.ROLES]
    cpu = wall = speech_s = 0.0
    if text_only:  # the rules on the words of the text: a recogniser making no mistake
        heard = text_turns(turns)
        echoes, lex = find_echoes(heard, f0), lexical_mirroring(heard)
    else:
        c0, w0 = time.process_time(), time.perf_counter()
        result = pipeline.with_verbal(result, path)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        verbal = result.verbal
        assert verbal is not None
        echoes, lex, heard = list(verbal.echoes), verbal.lexical, list(verbal.turns)
        speech_s = sum(verbal.speech_s)
    found: dict[int, bool] = {}  # truth turn -> found as question?
    false = 0
    for e in echoes:
        i = _turn_of(turns, e.speaker, e.start_s)
        if i is not None and turns[i]["echo_words"]:
            found[i] = found.get(i, False) or e.question
        else:
            false += 1
    true_echoes = [i for i, t in enumerate(turns) if t["echo_words"]]
    true_questions = [i for i, t in enumerate(turns) if t["echo_question"]]
    rises = [
        (final_rise_st(f0[t["speaker"]], t["start_s"], t["end_s"]), t["echo_question"])
        for t in turns[1:]
        if t["end_s"] - t["start_s"] <= QUESTION_MAX_S
    ]
    if dump is not None:  # what was heard, turn by turn, next to the truth
        words = [
            {"speaker": t.speaker, "start_s": t.start_s, "words": [w.text for w in t.words]}
            for t in heard
        ]
        (dump / f"{path.stem}.heard.json").write_text(json.dumps(words, indent=1))
    return {
        "call": path.stem,
        "kind": truth["kind"],
        "duration_s": result.duration_s,
        "true_echoes": len(true_echoes),
        "planted": sum(bool(t["planted"]) for t in turns),
        "found_true": sum(i in found for i in true_echoes),
        "found_false": false,
        "true_questions": len(true_questions),
        "questions_found": sum(found.get(i, False) for i in true_questions),
        "short_rises": rises,
        "lexical_mirrored": lex.mirrored,
        "lexical": (lex.adjacent, lex.nonadjacent, lex.p),
        "cpu_s": cpu,
        "wall_s": wall,
        "speech_s": speech_s,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("calls", type=Path)
    ap.add_argument("--workers", type=int, default=1, help="calls analysed in parallel")
    ap.add_argument("--dump", type=Path, default=None, help="write the words heard per turn here")
    ap.add_argument(
        "--text-only",
        action="store_true",
        help="no recogniser: the rules on the words of the truth's text (pitch as measured)",
    )
    args = ap.parse_args(argv)
    if args.dump is not None:
        args.dump.mkdir(parents=True, exist_ok=True)
    rows = []
    paths = sorted(args.calls.glob("*.wav"))
    with cf.ProcessPoolExecutor(max_workers=max(args.workers, 1)) as pool:
        n = len(paths)
        results = pool.map(evaluate, paths, [args.dump] * n, [args.text_only] * n)
        for row in results:
            rows.append(row)
            lexical = ", ".join("-" if v is None else f"{v:.3f}" for v in row["lexical"])
            print(
                f"{row['call']}: echoes true {row['true_echoes']} (planted {row['planted']}), "
                f"found {row['found_true']} true + {row['found_false']} false; echo questions "
                f"{row['questions_found']}/{row['true_questions']}; lexical mirrored "
                f"{row['lexical_mirrored']} (adjacent, non-adjacent, p: {lexical}); "
                f"verbal step {row['cpu_s']:.1f} s CPU for {row['duration_s']:.0f} s of call",
                flush=True,
            )
    true = sum(r["true_echoes"] for r in rows)
    hit = sum(r["found_true"] for r in rows)
    false = sum(r["found_false"] for r in rows)
    tq = sum(r["true_questions"] for r in rows)
    hq = sum(r["questions_found"] for r in rows)
    print(
        f"\nechoes: recall {hit}/{true} = {hit / max(true, 1):.2f}, precision "
        f"{hit}/{hit + false} = {hit / max(hit + false, 1):.2f}"
    )
    print(f"echo questions: recall {hq}/{tq} = {hq / max(tq, 1):.2f}")
    rises = [x for r in rows for x in r["short_rises"] if np.isfinite(x[0])]
    q = np.array([x for x, is_q in rises if is_q])
    other = np.array([x for x, is_q in rises if not is_q])
    if q.size and other.size:
        print(
            f"final rise of short turns (<= {QUESTION_MAX_S:.0f} s), semitones: echo questions "
            f"median {np.median(q):.2f} ({np.mean(q >= RISE_ST):.2f} >= {RISE_ST}), other short "
            f"turns median {np.median(other):.2f} ({np.mean(other >= RISE_ST):.2f} >= {RISE_ST})"
        )
    for kind in ("echo", "plain"):
        some = [r for r in rows if r["kind"] == kind]
        if some:
            m = sum(bool(r["lexical_mirrored"]) for r in some)
            print(f"lexical mirroring on {kind} calls: mirrored in {m}/{len(some)}")
    if args.text_only:
        return 0
    cpu = sum(r["cpu_s"] for r in rows)
    dur = sum(r["duration_s"] for r in rows)
    speech = sum(r["speech_s"] for r in rows)
    print(
        f"cost: {cpu:.0f} s CPU for {dur:.0f} s of calls ({speech:.0f} s of speech decoded): "
        f"{cpu / dur * 3600 / 60:.1f} CPU min per hour of call"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
