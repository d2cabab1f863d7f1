"""Make ``samples/mirroring_call.opus``: a synthetic stereo phone call of almost 10 minutes in
which the agent mirrors the customer, and ``samples/mirroring_call.truth.json``, what was planted.

    python samples/make_mirroring_sample.py [--out-dir samples] [--workers 2] [--check]

The call is planned and rendered by ``tests/synthcall.py`` (espeak-ng voices, the
project's own sentence generator and plan, telephone band, line noise, crosstalk, 8 kHz
mu-law) with a fixed seed: the agent (left channel, a female voice) follows the customer
(right channel, a male voice) in **pitch level** and **speaking rate**: each agent turn
takes the customer's previous turn's deviation from his own average, turn for turn
(``plant="turn"``, see ``tests.synthcall.plan_call``). Nothing else is planted: the other
features of both speakers wander independently, and the customer does not follow the agent.

The truth file holds the plan (relation, seed, voices, render settings) and, per turn,
what was measured on the clean rendered speech before mixing (f0, level, rates): the
planted relation as the audio carries it. ``--check`` runs the analysis on the written
file and prints, per feature, what the report says.

The audio is encoded as Ogg Opus at 24 kbit/s by PyAV's libopus (a dependency of the
project), 1.6 MB. At 16 kbit/s libopus folds the two channels into one (the decoded
channels correlate 1.0: each speaker on both channels); 20 kbit/s keeps them apart, 24
leaves a margin. Rendering takes 1.5-4 min of CPU the first time (utterances are then
cached, see ``tests.synthcall``); espeak-ng must be on PATH. Another espeak-ng or libopus
version renders slightly different audio from the same plan.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import synthcall as sc  # noqa: E402

STEM = "mirroring_call"
SEED = 2027
DURATION_S = 600.0
FOLLOWER = "agent"
FEATURES = ("pitch_level", "speaking_rate")
STRENGTH = 1.0
PLANT = "turn"
FEMALE = (True, False)  # agent, customer
CORRECTION_STEPS = 4
TOLERANCE = 0.25
OPUS_BIT_RATE = 24000


def render(workers: int, seed: int = SEED) -> tuple[sc.SynthCall, list[sc.TurnSpec]]:
    rng = np.random.default_rng(seed)
    turns = sc.plan_call(
        "follow",
        duration_s=DURATION_S,
        rng=rng,
        follower=FOLLOWER,
        feature=FEATURES,
        strength=STRENGTH,
        plant=PLANT,
        female=FEMALE,
    )
    call = sc.render_call(
        turns,
        rng=rng,
        workers=workers,
        correction_steps=CORRECTION_STEPS,
        tolerance=TOLERANCE,
    )
    return call, turns


def write_opus(path: Path, call: sc.SynthCall) -> None:
    """Stereo Ogg Opus, bit-exact container (no random stream serial)."""
    import av

    audio = np.ascontiguousarray(np.clip(call.audio, -1.0, 1.0).astype(np.float32))
    with av.open(
        str(path), mode="w", format="ogg", container_options={"fflags": "+bitexact"}
    ) as out:
        stream = out.add_stream(
            "libopus",
            rate=call.sample_rate_hz,
            layout="stereo",
            options={"application": "voip"},
        )
        stream.bit_rate = OPUS_BIT_RATE
        resampler = av.AudioResampler(
            format=stream.codec_context.codec.audio_formats[0].name,
            layout="stereo",
            rate=call.sample_rate_hz,
        )
        frame = av.AudioFrame.from_ndarray(audio, format="fltp", layout="stereo")
        frame.sample_rate = call.sample_rate_hz
        for converted in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(converted):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def _num(x: float, digits: int = 3) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), digits)


def truth(call: sc.SynthCall, seed: int = SEED) -> dict[str, Any]:
    roles = {v: k for k, v in sc.ROLES.items()}
    leader = "customer" if FOLLOWER == "agent" else "agent"
    return {
        "file": f"{STEM}.opus",
        "made_by": "samples/make_mirroring_sample.py",
        "relation": {
            "kind": "follow",
            "follower": FOLLOWER,
            "leader": leader,
            "features": list(FEATURES),
            "strength": STRENGTH,
            "plant": PLANT,
            "meaning": f"each {FOLLOWER} turn takes the {leader}'s previous turn's deviation "
            f"from the {leader}'s own average in {' and '.join(FEATURES)} (strength "
            f"{STRENGTH}: all of it); no other relation is planted",
            "note": "the speaking rate is planted through each turn's articulation rate and "
            "pauses, so the agent's articulation rate follows the customer's speaking rate "
            "too",
        },
        "expected_report": {f: {"mirrored": True, "follower": FOLLOWER} for f in FEATURES},
        "seed": seed,
        "planned_duration_s": DURATION_S,
        "duration_s": round(call.duration_s, 3),
        "channels": {"0": "agent", "1": "customer"},
        "voices": {
            "agent": sc.FEMALE_VOICE if FEMALE[0] else sc.MALE_VOICE,
            "customer": sc.FEMALE_VOICE if FEMALE[1] else sc.MALE_VOICE,
        },
        "espeak": sc.espeak_version(),
        "render": {
            "sample_rate_hz": call.sample_rate_hz,
            "telephone_band": call.telephone,
            "mulaw": call.mulaw,
            "bleed_db": _num(call.bleed_db),
            "bleed_delay_ms": call.bleed_delay_ms,
            "noise_db": _num(call.noise_db),
            "hum_hz": call.hum_hz,
            "correction_steps": CORRECTION_STEPS,
            "tolerance": TOLERANCE,
        },
        "encoding": {"container": "ogg", "codec": "opus", "bit_rate": OPUS_BIT_RATE},
        "turn_fields": "measured on the clean rendered speech before mixing: f0_median_st "
        "(semitones re 100 Hz), f0_sd_st, level_db (dBFS), speaking_rate_per_s (syllables "
        "over the turn, pauses included), articulation_rate_per_s (over speech)",
        "turns": [
            {
                "speaker": roles[t.speaker],
                "backchannel": t.backchannel,
                "start_s": round(t.start_s, 3),
                "end_s": round(t.end_s, 3),
                "syllables": t.syllables,
                "f0_median_st": _num(t.f0_median_st),
                "f0_sd_st": _num(t.f0_sd_st),
                "level_db": _num(t.level_db, 2),
                "speaking_rate_per_s": _num(t.speaking_rate_per_s),
                "articulation_rate_per_s": _num(t.articulation_rate_per_s),
            }
            for t in call.turns
        ],
    }


def check(path: Path) -> dict[str, Any]:
    """Analyse ``path`` as ``mirrorline analyze`` does and return what the report says."""
    from models.params import AnalysisConfig
    from service.analysis import analyze_path

    report = analyze_path(path, AnalysisConfig(), progress=False)
    assert report.mirroring is not None
    m = report.mirroring
    out: dict[str, Any] = {"duration_s": report.audio.duration_s, "features": {}}
    for name, feat in m.features.items():
        sync = feat.synchrony
        out["features"][name] = {
            "mirrored": feat.mirrored,
            "follower": feat.follower,
            "agent_follows_r": sync.agent_follows_customer.r,
            "agent_follows_p_adj": sync.agent_follows_customer.p_adj,
            "customer_follows_r": sync.customer_follows_agent.r,
            "customer_follows_p_adj": sync.customer_follows_agent.p_adj,
            "convergence": feat.convergence.direction,
        }
    out["scores"] = m.scores.model_dump()
    out["detectable_r"] = m.detectable_r
    out["warnings"] = [w.code for w in report.warnings]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--workers", type=int, default=2, help="processes rendering utterances")
    ap.add_argument("--seed", type=int, default=SEED, help=f"another call (default {SEED})")
    ap.add_argument("--wav", action="store_true", help="also write the mu-law WAV rendered")
    ap.add_argument("--check", action="store_true", help="analyse the file and print the result")
    args = ap.parse_args(argv)
    if not sc.espeak_available():
        print("error: espeak-ng is not on PATH (apt-get install espeak-ng)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    call, _ = render(args.workers, args.seed)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    opus = args.out_dir / f"{STEM}.opus"
    write_opus(opus, call)
    if args.wav:
        sc.write_wav(args.out_dir / f"{STEM}.wav", call, encoding="mulaw")
    text = json.dumps(truth(call, args.seed), indent=1, allow_nan=False)
    (args.out_dir / f"{STEM}.truth.json").write_text(text + "\n")
    print(
        f"wrote {opus} ({opus.stat().st_size / 1e6:.2f} MB, {call.duration_s:.1f} s) in "
        f"{time.perf_counter() - t0:.0f} s",
        file=sys.stderr,
    )
    if args.check:
        print(json.dumps(check(opus), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
