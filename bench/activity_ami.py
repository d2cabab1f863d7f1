"""Accuracy and speed of dsp.activity on real recordings (AMI) and synthetic telephone calls.

Run from the repository root::

    python bench/activity_ami.py            # everything
    python bench/activity_ami.py --quick    # skip the 60-minute speed run
    python bench/activity_ami.py --quick --segment-join-s 0.7   # segments joined less

Reads ``../shared/corpus`` relative to the repository (the shared real-speech corpus; see its
SOURCES.md for licences). Prints, per file and channel, after bridging pauses shorter than
0.5 s in BOTH reference and hypothesis (the hypothesis is the report's ``segments``: IPUs with
pauses inside a speaker's own turn joined; the raw 10 ms decisions are printed alongside):

* agreement: fraction of 10 ms frames where hypothesis == reference;
* FA/nonspeech: hypothesis speech where the reference has none, over reference non-speech frames;
* FA/all: the same count over all frames;
* miss/speech: reference speech the hypothesis missed, over reference speech frames.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dsp.activity import detect_speech, frame_features, ipus  # noqa: E402
from dsp.frames import frame_count, segments_to_mask  # noqa: E402
from dsp.io import decode  # noqa: E402
from dsp.params import AnalysisParams  # noqa: E402
from dsp.pipeline import speech_units  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus"
AMI = CORPUS / "ami-seriously"
DERIVED = AMI / "derived" / "stereo_L-FEE016_R-FEE013_2.0-44.5s"
# mixture.rttm speaker -> sources/sourceN.wav (from the corpus SOURCES.md)
PARAMS = AnalysisParams()
SOURCE_OF = {"MEO015": 0, "FEE013": 1, "MEE014": 2, "FEE016": 3}
BRIDGE_S = 0.5


def read_rttm(path: Path) -> dict[str, list[tuple[float, float, int]]]:
    """Speaker -> list of (start_s, end_s, channel) from an RTTM file."""
    out: dict[str, list[tuple[float, float, int]]] = {}
    for line in path.read_text().splitlines():
        f = line.split()
        if len(f) < 8 or f[0] != "SPEAKER":
            continue
        start, dur = float(f[3]), float(f[4])
        out.setdefault(f[7], []).append((start, start + dur, int(f[2])))
    return out


def bridged(mask: npt.NDArray[np.bool_], bridge_s: float = BRIDGE_S) -> npt.NDArray[np.bool_]:
    segs = ipus(mask, min_pause_s=bridge_s, min_ipu_s=0.0)
    return segments_to_mask(segs, mask.shape[0])


def score(hyp: npt.NDArray[np.bool_], ref: npt.NDArray[np.bool_]) -> dict[str, float]:
    h, r = bridged(hyp), bridged(ref)
    fa = int((h & ~r).sum())
    miss = int((~h & r).sum())
    return {
        "agree": float((h == r).mean()),
        "fa_nonspeech": fa / max(1, int((~r).sum())),
        "fa_all": fa / r.shape[0],
        "miss_speech": miss / max(1, int(r.sum())),
    }


def analyse(samples: npt.NDArray[np.float32], sr: int) -> tuple[object, float]:
    t0 = time.process_time()
    feats = np.stack([frame_features(samples[0], sr), frame_features(samples[1], sr)])
    act = detect_speech(feats)
    return act, time.process_time() - t0


def report_segments(speech: npt.NDArray[np.bool_]) -> list[npt.NDArray[np.bool_]]:
    """The report's ``segments`` of both channels as frame masks (drawn by
    :func:`dsp.pipeline.speech_units`: IPUs, then pauses inside a speaker's own turn joined)."""
    _, segments = speech_units(speech, PARAMS)
    return [segments_to_mask(seg, speech.shape[1]) for seg in segments]


def report(name: str, samples: npt.NDArray[np.float32], sr: int, refs: list[npt.NDArray]) -> bool:
    """Scores the report's segments (pass/fail) and, for information, the raw frame decisions."""
    act, cpu = analyse(samples, sr)
    ok = True
    print(f"\n{name}  ({samples.shape[1] / sr:.1f} s at {sr} Hz, cpu {cpu * 1000:.0f} ms)")
    segments = report_segments(act.speech)  # type: ignore[attr-defined]
    for c in (0, 1):
        s = score(segments[c], refs[c])
        raw = score(act.speech[c], refs[c])  # type: ignore[attr-defined]
        passed = s["agree"] >= 0.93 and s["fa_nonspeech"] <= 0.05 and s["fa_all"] <= 0.05
        ok &= passed
        print(
            f"  ch{c}: agreement {s['agree']:.3f}  FA/nonspeech {s['fa_nonspeech']:.4f}  "
            f"FA/all {s['fa_all']:.3f}  miss/speech {s['miss_speech']:.3f}  "
            f"(raw frames: agreement {raw['agree']:.3f}, FA {raw['fa_nonspeech']:.3f})  "
            f"floor {act.noise_floor_db[c]:.1f} dB  bleed {act.bleed_db[c]:.1f} dB  "  # type: ignore[attr-defined]
            f"{'PASS' if passed else 'FAIL'}"
        )
    return ok


def ami_derived() -> bool:
    rttm = read_rttm(DERIVED.parent / (DERIVED.name + ".rttm"))
    ok = True
    for suffix in (".wav", "_8k_ulaw.wav"):
        audio = decode(DERIVED.parent / (DERIVED.name + suffix))
        sr = audio.sample_rate_hz
        n = frame_count(audio.samples.shape[1], sr)
        refs = []
        for spk in ("FEE016", "FEE013"):
            segs = np.array([(s, e) for s, e, _ in rttm[spk]]).reshape(-1, 2)
            refs.append(segments_to_mask(segs, n))
        ok &= report("AMI derived " + suffix, audio.samples, sr, refs)
        turns_vs_reference(audio.samples, sr, refs)
    return ok


def turns_vs_reference(samples: npt.NDArray[np.float32], sr: int, refs: list[npt.NDArray]) -> None:
    """dsp.turns on the hypothesis IPUs next to the same on the reference turns."""
    from dsp.turns import turn_taking

    act, _ = analyse(samples, sr)
    duration_s = samples.shape[1] / sr
    rows = []
    for name, masks in (("reference", refs), ("hypothesis", list(act.speech))):  # type: ignore[attr-defined]
        tt = turn_taking(ipus(masks[0]), ipus(masks[1]), duration_s=duration_s)
        a, b = tt.agent, tt.customer
        rows.append(
            f"    {name:10s}  turns {a.turns}/{b.turns}  backchannels {a.backchannels}/"
            f"{b.backchannels}  talk {a.talk_time_s:.1f}/{b.talk_time_s:.1f} s  "
            f"longest {a.longest_monologue_s:.1f}/{b.longest_monologue_s:.1f} s  "
            f"interruptions {a.interruptions}/{b.interruptions}  "
            f"switches/min {tt.switches_per_min:.1f}  overlap {tt.overlap_s:.1f} s"
        )
    print("  turn-taking (left/right):")
    print("\n".join(rows))


def ami_sources() -> None:
    """Second check: other speaker pairs built from the AMI headset sources, full 60 s."""
    rttm = read_rttm(AMI / "mixture.rttm")
    for left, right in (("FEE016", "FEE013"), ("MEO015", "FEE013"), ("MEO015", "FEE016")):
        chans = [decode_mono(AMI / "sources" / f"source{SOURCE_OF[s]}.wav") for s in (left, right)]
        n_samples = min(c[0].shape[0] for c in chans)
        sr = chans[0][1]
        samples = np.stack([c[0][:n_samples] for c in chans])
        n = frame_count(n_samples, sr)
        refs = []
        for spk in (left, right):
            segs = np.array([(s, e) for s, e, _ in rttm[spk]]).reshape(-1, 2)
            refs.append(segments_to_mask(segs, n))
        report(f"AMI sources L={left} R={right} (0-60 s)", samples, sr, refs)
        if "FEE013" in (left, right):
            print("    note: FEE013 speaks at 0.0-1.7 s without an RTTM turn (known gap)")


def decode_mono(path: Path) -> tuple[npt.NDArray[np.float32], int]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        parts = [f.to_ndarray().reshape(-1) for f in container.decode(stream)]
        sr = int(stream.codec_context.sample_rate)
    x = np.concatenate(parts)
    if x.dtype.kind == "i":
        x = x.astype(np.float32) / 32768.0
    return x.astype(np.float32), sr


def telephone_talk_time() -> None:
    """Talk time on synthetic two-party telephone calls built from real single-speaker speech."""
    sys.path.insert(0, str(REPO / "tests" / "dsp"))
    try:
        from test_activity import make_phone_call  # type: ignore[import-not-found]
    except ImportError as exc:
        print(f"\n(synthetic telephone calls skipped: {exc})")
        return
    print("\nSynthetic telephone calls (8 kHz mu-law, band 300-3400 Hz, bleed, hiss + hum)")
    print("  seed  bleed_dB  gain_diff_dB  true_s(A,B)      est_s(A,B)       rel_err(A,B)")
    worst = 0.0
    for seed in range(8):
        rng = np.random.default_rng(seed)
        bleed = float(rng.uniform(-30.0, -15.0))
        gain = float(rng.uniform(-20.0, 0.0))
        call = make_phone_call(rng, bleed_db=bleed, gain_b_db=gain)
        act, _ = analyse(call.samples, call.sr)
        est = []
        for c in (0, 1):
            segs = ipus(act.speech[c])  # type: ignore[attr-defined]
            est.append(float(np.sum(segs[:, 1] - segs[:, 0])))
        err = [abs(e - t) / t for e, t in zip(est, call.talk_time_s, strict=True)]
        worst = max(worst, *err)
        print(
            f"  {seed:4d}  {bleed:7.1f}  {gain:11.1f}   "
            f"{call.talk_time_s[0]:5.1f} {call.talk_time_s[1]:5.1f}      "
            f"{est[0]:5.1f} {est[1]:5.1f}      {err[0]:.3f} {err[1]:.3f}"
        )
    print(f"  worst relative talk-time error: {worst:.3f} (target <= 0.15)")


def synthcall_talk_time() -> None:
    """Talk time and turn counts on espeak-ng synthetic calls (tests/synthcall.py)."""
    sys.path.insert(0, str(REPO))
    try:
        from tests.synthcall import espeak_available, plan_call, render_call
    except ImportError as exc:
        print(f"\n(synthcall calls skipped: {exc})")
        return
    if not espeak_available():
        print("\n(synthcall calls skipped: espeak-ng not installed)")
        return
    from dsp.turns import turn_taking

    print("\nespeak-ng synthetic calls (tests/synthcall.py: 8 kHz mu-law, bleed, line noise)")
    print("  seed  bleed_dB  true_s(A,B)   est_s(A,B)   rel_err(A,B)  turns true/est  bc true/est")
    worst = 0.0
    for seed, bleed in ((0, -15.0), (1, -20.0), (2, -25.0), (3, -30.0)):
        rng = np.random.default_rng(seed)
        call = render_call(
            plan_call("independent", duration_s=90.0, rng=rng), bleed_db=bleed, rng=rng
        )
        act, _ = analyse(call.audio, call.sample_rate_hz)
        n = act.speech.shape[1]  # type: ignore[attr-defined]
        true_talk, est_talk, hyp_ipus = [], [], []
        for c in (0, 1):
            segs = [u.segments_s for u in call.utterances if u.speaker == c]
            truth = segments_to_mask(np.concatenate(segs).reshape(-1, 2), n)
            t_ipus = ipus(truth)
            h_ipus = ipus(act.speech[c])  # type: ignore[attr-defined]
            hyp_ipus.append(h_ipus)
            true_talk.append(float(np.sum(t_ipus[:, 1] - t_ipus[:, 0])))
            est_talk.append(float(np.sum(h_ipus[:, 1] - h_ipus[:, 0])))
        err = [abs(e - t) / t for e, t in zip(est_talk, true_talk, strict=True)]
        worst = max(worst, *err)
        tt = turn_taking(hyp_ipus[0], hyp_ipus[1], duration_s=call.duration_s)
        true_turns = sum(1 for t in call.turns if not t.backchannel)
        true_bc = sum(1 for t in call.turns if t.backchannel)
        est_turns = tt.agent.turns + tt.customer.turns
        est_bc = tt.agent.backchannels + tt.customer.backchannels
        print(
            f"  {seed:4d}  {bleed:7.1f}   {true_talk[0]:5.1f} {true_talk[1]:5.1f}   "
            f"{est_talk[0]:5.1f} {est_talk[1]:5.1f}   {err[0]:.3f} {err[1]:.3f}     "
            f"{true_turns:3d}/{est_turns:3d}       {true_bc:2d}/{est_bc:2d}"
        )
    print(f"  worst relative talk-time error: {worst:.3f} (target <= 0.15)")


def speed() -> None:
    """CPU time of frame_features + detect_speech for 60 minutes of 8 kHz stereo."""
    path = DERIVED.parent / (DERIVED.name + "_8k_ulaw.wav")
    audio = decode(path)
    sr = audio.sample_rate_hz
    reps = int(np.ceil(3600 * sr / audio.samples.shape[1]))
    long = np.tile(audio.samples, (1, reps))[:, : 3600 * sr]
    rng = np.random.default_rng(0)
    long = long + (1e-3 * rng.standard_normal(long.shape)).astype(np.float32)
    t0 = time.process_time()
    feats = np.stack([frame_features(long[0], sr), frame_features(long[1], sr)])
    t1 = time.process_time()
    act = detect_speech(feats)
    t2 = time.process_time()
    print(
        f"\nSpeed, 60 min 8 kHz stereo (tiled AMI excerpt): frame_features {t1 - t0:.2f} s CPU "
        f"(both channels), detect_speech {t2 - t1:.2f} s CPU, total {t2 - t0:.2f} s; "
        f"speech {act.speech.mean(axis=1).round(3)}"
    )


def main() -> int:
    global PARAMS  # the report's settings, as scored by report_segments
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 60-minute speed run")
    parser.add_argument(
        "--segment-join-s",
        type=float,
        default=PARAMS.segment_join_s,
        help="pauses inside a turn joined in the scored segments (the report's setting)",
    )
    args = parser.parse_args()
    PARAMS = replace(PARAMS, segment_join_s=args.segment_join_s).validate()
    if not AMI.is_dir():
        print(f"corpus not found at {CORPUS} (expected ../shared/corpus next to the repo)")
        return 1
    ok = ami_derived()
    ami_sources()
    telephone_talk_time()
    synthcall_talk_time()
    if not args.quick:
        speed()
    print("\nAMI derived targets (agreement >= 0.93, FA <= 0.05):", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
