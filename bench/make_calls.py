"""Write synthetic two-party calls with known truth, for running and scoring the pipeline.

    python bench/make_calls.py OUT_DIR [--n 2] [--seed 0] [--duration-s 180] [--workers 2]
                               [--variants independent,follow:customer:pitch_level,...]
                               [--encoding pcm16|mulaw] [--strength 0.6] [--plant edge|turn]
                               [--correction-steps 1] [--tolerance 1.0]

For every variant and every i < n it writes, under OUT_DIR:

- ``<variant>_<i>.wav``        stereo 8 kHz call (agent left, customer right)
- ``<variant>_<i>.json``       truth: settings, turns, utterances, speech segments, planned
                               relation (kind, follower, feature, strength), planned per-turn
                               values of every feature, and 16 s / 8 s window truth
- ``<variant>_<i>.f0.npz``     ``f0_hz`` (2, T) clean-speech pyin f0 on the 10 ms clock
- ``index.json``               one line per call: file names, variant, seed, duration

Variants: ``independent``, ``converge``, ``diverge``, ``varying`` and
``follow:<agent|customer>:<feature>`` for the five features (the default writes all 14).
Following is planted on the follower's first sentence from the leader's last (``--plant
edge``) or on the follower's whole turn from the leader's whole turn (``--plant turn``; with
``--strength 1`` a copy of the leader's previous turn); see ``tests.synthcall.plan_call``.
``--correction-steps 4 --tolerance 0.25`` re-renders each sentence until its median f0, f0
sd and articulation rate are within a quarter of ``tests.synthcall.RETRY_*`` of the plan
(see ``tests.synthcall.render_call``), so the audio carries more of what was planted; plans
and texts do not change with them.
Seeds: call i of variant v uses ``numpy.random.default_rng([seed, v, i])`` (v = position of
the variant in the default list), so a variant's calls do not change when others are added.
Needs espeak-ng on PATH.
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

from tests import synthcall as sc  # noqa: E402

DEFAULT_VARIANTS = (
    ["independent"]
    + [f"follow:{who}:{feat}" for who in ("customer", "agent") for feat in sc.FEATURES]
    + ["converge", "diverge", "varying"]
)


def _parse_variant(v: str) -> dict[str, Any]:
    parts = v.split(":")
    if parts[0] == "follow":
        if len(parts) != 3 or parts[1] not in sc.ROLES or parts[2] not in sc.FEATURES:
            raise SystemExit(f"bad variant {v!r}: use follow:<agent|customer>:<feature>")
        return {"kind": "follow", "follower": parts[1], "feature": parts[2]}
    if parts[0] in ("converge", "diverge") and len(parts) in (2, 3):
        # converge:<mover> or converge:<mover>:<feature>
        out: dict[str, Any] = {"kind": parts[0], "follower": parts[1]}
        if len(parts) == 3:
            out["feature"] = parts[2]
        return out
    if len(parts) != 1 or parts[0] not in sc.KINDS:
        raise SystemExit(f"bad variant {v!r}: kinds are {sc.KINDS}")
    return {"kind": parts[0]}


def _one(job: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    rng = np.random.default_rng(job["seed_seq"])
    plan_args = _parse_variant(job["variant"])
    turns = sc.plan_call(
        duration_s=job["duration_s"],
        rng=rng,
        strength=job["strength"],
        plant=job["plant"],
        **plan_args,
    )
    call = sc.render_call(
        turns, rng=rng, correction_steps=job["correction_steps"], tolerance=job["tolerance"]
    )
    out_dir = Path(job["out_dir"])
    stem = job["stem"]
    sc.write_wav(out_dir / f"{stem}.wav", call, encoding=job["encoding"])
    truth = sc.truth_to_dict(call)
    truth["relation"] = {
        "variant": job["variant"],
        "kind": plan_args["kind"],
        "follower": plan_args.get("follower"),
        "feature": plan_args.get("feature"),
        "strength": job["strength"] if plan_args["kind"] == "follow" else None,
        "plant": job["plant"] if plan_args["kind"] == "follow" else None,
        "seed": list(job["seed_seq"]),
        "correction_steps": job["correction_steps"],
        "tolerance": job["tolerance"],
    }
    truth["planned"] = {
        f: {
            k: [None if not np.isfinite(x) else round(float(x), 4) for x in arr]
            for k, arr in sc.planned_turn_values(turns, f).items()
        }
        for f in sc.FEATURES
    }
    w = sc.truth_windows(call, 16.0, 8.0)
    truth["windows_16_8"] = {
        "starts_s": w.starts_s.tolist(),
        **{
            name: [[None if not np.isfinite(x) else round(float(x), 4) for x in row] for row in arr]
            for name, arr in (
                ("pitch_st", w.pitch_st),
                ("pitch_sd_st", w.pitch_sd_st),
                ("level_db", w.level_db),
                ("rate_per_s", w.rate_per_s),
                ("speech_s", w.speech_s),
            )
        },
    }
    (out_dir / f"{stem}.json").write_text(json.dumps(truth, allow_nan=False))
    np.savez_compressed(out_dir / f"{stem}.f0.npz", f0_hz=call.f0_hz.astype(np.float32))
    errs = [
        float(sc.hz_to_st(u.planned_pitch_hz)) - u.f0_median_st
        for u in call.utterances
        if not u.backchannel and np.isfinite(u.f0_median_st)
    ]
    return {
        "stem": stem,
        "wav": f"{stem}.wav",
        "truth": f"{stem}.json",
        "f0": f"{stem}.f0.npz",
        "variant": job["variant"],
        "seed": list(job["seed_seq"]),
        "duration_s": round(call.duration_s, 2),
        "turns": sum(not t.backchannel for t in call.turns),
        "backchannels": sum(t.backchannel for t in call.turns),
        "pitch_plant_err_st_median_abs": round(float(np.median(np.abs(errs))), 3),
        "render_s": round(time.perf_counter() - t0, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--n", type=int, default=2, help="calls per variant (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--duration-s", type=float, default=180.0)
    ap.add_argument("--strength", type=float, default=0.6, help="follow strength (0-1)")
    ap.add_argument(
        "--plant",
        choices=("edge", "turn"),
        default="edge",
        help="follow planted on the first sentence (edge) or the whole turn (turn)",
    )
    ap.add_argument(
        "--correction-steps",
        type=int,
        default=1,
        help="re-renders of a sentence that misses its plan (default 1)",
    )
    ap.add_argument(
        "--tolerance",
        type=float,
        default=1.0,
        help="how close to the plan a sentence must come, times tests.synthcall.RETRY_*",
    )
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    ap.add_argument("--encoding", choices=("pcm16", "mulaw"), default="pcm16")
    ap.add_argument("--workers", type=int, default=1, help="calls rendered in parallel")
    args = ap.parse_args(argv)
    if not sc.espeak_available():
        print("error: espeak-ng is not on PATH (apt-get install espeak-ng)", file=sys.stderr)
        return 2
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        _parse_variant(v)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for v in variants:
        vid = DEFAULT_VARIANTS.index(v) if v in DEFAULT_VARIANTS else 1000 + variants.index(v)
        for i in range(args.n):
            jobs.append(
                {
                    "variant": v,
                    "stem": f"{v.replace(':', '-')}_{i}",
                    "seed_seq": (args.seed, vid, i),
                    "duration_s": args.duration_s,
                    "strength": args.strength,
                    "plant": args.plant,
                    "encoding": args.encoding,
                    "correction_steps": args.correction_steps,
                    "tolerance": args.tolerance,
                    "out_dir": str(args.out_dir),
                }
            )
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    if args.workers > 1:
        with cf.ProcessPoolExecutor(max_workers=args.workers) as pool:
            for row in pool.map(_one, jobs):
                rows.append(row)
                print(json.dumps(row), flush=True)
    else:
        for job in jobs:
            row = _one(job)
            rows.append(row)
            print(json.dumps(row), flush=True)
    (args.out_dir / "index.json").write_text(json.dumps(rows, indent=1))
    total = time.perf_counter() - t0
    audio_s = sum(r["duration_s"] for r in rows)
    print(
        f"wrote {len(rows)} calls ({audio_s:.0f} s of audio) to {args.out_dir} in {total:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
