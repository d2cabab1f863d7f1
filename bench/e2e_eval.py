"""End-to-end accuracy on synthetic calls with known truth (made by bench/make_calls.py).

Runs the whole pipeline (decode -> activity -> features -> windows -> mirroring) on every
call of a folder and scores it against the truth written next to it:

- talk time per speaker (relative error) against both truths: ``segments_s`` (strict
  phonation) and the utterance spans (what the pipeline's IPU talk time measures);
- windowed pitch, loudness and articulation rate vs the true window values (Pearson r,
  16 s windows every 8 s, pooled per call) on every call with enough windows;
- per-turn speaking and articulation rate: the measurement error (sd of the log ratio to
  the true turn rate) next to the true rates' spread within a speaker, the variation a
  rate-following relation has to show through;
- the report's ``segments`` against the utterance spans (both bridged at 0.5 s, as the
  activity target scores them): frame agreement and false alarms per channel;
- mirroring: on ``follow`` calls, detected when the planted feature is ``mirrored`` with the
  planted follower; next to it, how much of the planted relation the rendered speech still
  carries (``truth_r``: a lag-1 partial correlation, given the follower's previous
  turn-final value, on the truth measured from each clean utterance; the pipeline's test
  also controls for the follower's slow level) and what the pipeline measured (``r``);
  on ``converge``/``diverge`` calls, detected when the planted feature (any feature when
  none is named) has the planted direction; on ``independent`` and ``varying`` calls (no
  relation: each speaker's features wander on their own), a false positive when any
  feature is flagged ``mirrored`` or given a convergence direction. Both shares
  come with their 95 % Wilson interval (36 calls leave about +-14 points).

    python bench/make_calls.py bench/out/calls --n 3 --seed 7 --encoding mulaw
    python bench/e2e_eval.py bench/out/calls [--batch]

``--batch`` analyses the folder as one batch, so every call has the others as sham partners.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from activity_ami import bridged  # noqa: E402  (the activity target's 0.5 s bridging)

from dsp import mirroring as mirror_metrics  # noqa: E402
from dsp import pipeline  # noqa: E402
from dsp.frames import HOP_S, segments_to_mask  # noqa: E402
from dsp.mirroring.stats import residualize  # noqa: E402

ROLES = ("agent", "customer")
# per-turn rate features and their truth key per turn
TURN_RATE_KEYS = {
    "speaking_rate": "speaking_rate_per_s",
    "articulation_rate": "articulation_rate_per_s",
}
WINDOW_PAIRS = {
    "pitch_median_st": "pitch_st",
    "loudness_db": "level_db",
    "articulation_rate_syl_per_s": "rate_per_s",
}


# truth value of each feature per utterance (speaking rate: per turn)
TRUTH_KEYS = {
    "pitch_level": "f0_median_st",
    "pitch_variability": "f0_sd_st",
    "loudness": "level_db",
    "articulation_rate": "articulation_rate_per_s",
}


def truth_follow_r(truth: dict, feature: str, follower: int, *, plant: str = "edge") -> float:
    """Partial r of the follower's turn-initial truth value with the leader's turn-final
    one given the follower's previous turn-final value: the planted relation as rendered.
    With ``plant="turn"`` (whole turns planted) the values are whole-turn values."""
    turns = [t for t in truth["turns"] if not t["backchannel"]]
    utterances = truth["utterances"]

    def value(turn: dict, edge: int) -> float:
        if feature == "speaking_rate":
            return float(turn["speaking_rate_per_s"])
        if plant == "turn":
            return float(turn[TRUTH_KEYS[feature]])
        return float(utterances[turn["utterances"][edge]][TRUTH_KEYS[feature]])

    rows = [
        (value(t, 0), value(lead, -1), value(own, -1))
        for own, lead, t in zip(turns, turns[1:], turns[2:], strict=False)
        if t["speaker"] == follower and lead["speaker"] != follower and own["speaker"] == follower
    ]
    data = np.asarray(rows, dtype=float).reshape(-1, 3)
    data = data[np.isfinite(data).all(axis=1)]
    if data.shape[0] < 5:
        return float("nan")
    y, x, z = data.T
    return _corr(residualize(y, z[:, None]), residualize(x, z[:, None]))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 5 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def _most_overlapping(lo: float, hi: float, spans: np.ndarray) -> tuple[int, float]:
    """Row of ``spans`` (n, 2) that overlaps ``[lo, hi]`` most, and by how many seconds."""
    overlap = np.minimum(hi, spans[:, 1]) - np.maximum(lo, spans[:, 0])
    best = int(np.argmax(overlap))
    return best, float(overlap[best])


def turn_rate_fidelity(
    units: mirror_metrics.SpeakerUnits, truth: dict, speaker: int, feature: str
) -> tuple[float, float]:
    """How well one speaker's per-turn rate ``feature`` is measured: the sd of
    ``log(measured / true)`` over the speaker's turns (each pipeline turn matched to the true
    turn it overlaps most) next to the sd of the true ``log`` rate over the same turns (the
    spread a following relation lives in). Both as fractions (0.05 = 5 %)."""
    true_turns = [t for t in truth["turns"] if t["speaker"] == speaker and not t["backchannel"]]
    if units.turn_labels is None or not true_turns:
        return float("nan"), float("nan")
    spans = np.array([[t["start_s"], t["end_s"]] for t in true_turns], dtype=float)
    values = np.array([t[TURN_RATE_KEYS[feature]] for t in true_turns], dtype=float)
    measured = np.asarray(units.turn_features[feature], dtype=float)
    pairs = []
    for label, value in zip(units.turn_labels, measured, strict=True):
        members = units.turn_index == label
        lo, hi = float(units.start_s[members].min()), float(units.end_s[members].max())
        best, overlap_s = _most_overlapping(lo, hi, spans)
        if overlap_s > 0 and value > 0 and values[best] > 0:
            pairs.append((math.log(value / values[best]), math.log(values[best])))
    if len(pairs) < 5:
        return float("nan"), float("nan")
    err, true_log = np.asarray(pairs).T
    return float(np.std(err)), float(np.std(true_log))


def ipu_pitch_variability_fidelity(
    units: mirror_metrics.SpeakerUnits, truth: dict, speaker: int
) -> float:
    """Correlation, within one speaker, of the pipeline's per-IPU pitch variability with the
    f0 sd (st) of the clean utterance the IPU lies in (more than half of it inside): how much
    of a speaker's sentence-to-sentence variability the measurement keeps."""
    utterances = [
        u for u in truth["utterances"] if u["speaker"] == speaker and not u["backchannel"]
    ]
    if not utterances:
        return float("nan")
    spans = np.array([[u["start_s"], u["end_s"]] for u in utterances], dtype=float)
    true_sd = np.array([u["f0_sd_st"] for u in utterances], dtype=float)
    measured = np.asarray(units.features["pitch_variability"], dtype=float)
    pairs = []
    for lo, hi, value in zip(units.start_s, units.end_s, measured, strict=True):
        best, overlap_s = _most_overlapping(lo, hi, spans)
        if overlap_s > 0.5 * (hi - lo):
            pairs.append((value, true_sd[best]))
    a = np.asarray(pairs, dtype=float).reshape(-1, 2)
    return _corr(a[:, 0], a[:, 1])


def _per_channel(rows: list[dict], key: str) -> list[float]:
    """``<role>_<key>`` of every call and both roles."""
    return [r[f"{role}_{key}"] for r in rows for role in ROLES]


def score_call(result: pipeline.AnalysisResult, truth: dict) -> dict:
    out: dict = {"variant": truth["relation"]["variant"], "relation": truth["relation"]}
    n_frames = len(result.speakers["agent"].speech)
    for row, role in enumerate(ROLES):
        true_mask = segments_to_mask(np.asarray(truth["segments_s"][row]), n_frames)
        true_talk = true_mask.sum() * HOP_S
        talk = (
            result.turn_taking.agent.talk_time_s
            if row == 0
            else result.turn_taking.customer.talk_time_s
        )
        out[f"{role}_talk_err"] = abs(talk / true_talk - 1.0) if true_talk else float("nan")
        # the pipeline's talk time counts IPUs (pauses < 0.2 s bridged): utterance spans
        # (backchannels included) are the matching truth; segments_s is strict phonation
        spans = [
            [u["start_s"], u["end_s"]] for u in truth.get("utterances", []) if u["speaker"] == row
        ]
        utt_mask = segments_to_mask(np.asarray(spans, dtype=float).reshape(-1, 2), n_frames)
        utt_talk = utt_mask.sum() * HOP_S
        out[f"{role}_talk_err_utt"] = abs(talk / utt_talk - 1.0) if utt_talk else float("nan")
        hyp = bridged(segments_to_mask(result.speakers[role].segments_s, n_frames))
        ref = bridged(utt_mask)
        out[f"{role}_seg_agree"] = float((hyp == ref).mean())
        out[f"{role}_seg_fa"] = float((hyp & ~ref).sum() / max(1, (~ref).sum()))
        out[f"{role}_pitch_variability_ipu_r"] = ipu_pitch_variability_fidelity(
            result.speakers[role].units, truth, row
        )
        for feature in TURN_RATE_KEYS:
            out[f"{role}_{feature}_turn_err"], out[f"{role}_{feature}_turn_spread"] = (
                turn_rate_fidelity(result.speakers[role].units, truth, row, feature)
            )
    # windowed tracking, on the truth's 16 s / 8 s clock
    truth_w = truth["windows_16_8"]
    params = pipeline.replace(result.params, window_s=16.0, hop_s=8.0)
    rewindowed = pipeline.with_windows(result, params)
    n = min(len(truth_w["starts_s"]), rewindowed.windows.values["pitch_median_st"].shape[1])
    for ours, theirs in WINDOW_PAIRS.items():
        a = rewindowed.windows.values[ours][:, :n]
        b = np.asarray(truth_w[theirs], dtype=float)[:, :n]
        if ours == "loudness_db":  # channel gains differ: compare movements per speaker
            a = a - np.nanmean(a, axis=1, keepdims=True)
            b = b - np.nanmean(b, axis=1, keepdims=True)
        out[f"r_{ours}"] = _corr(a.ravel(), b.ravel())
    mirroring = result.mirroring
    assert mirroring is not None
    relation = truth["relation"]
    kind = relation["kind"]
    features = {f.name: f for f in mirroring.features}
    out["scores"] = mirroring.scores.to_dict()
    if kind == "follow":
        f = features[relation["feature"]]
        out["detected"] = bool(f.mirrored) and f.follower == relation["follower"]
        out["flag"] = f"{f.follower}/{f.mirrored}"
        follows = (
            f.agent_follows_customer
            if relation["follower"] == "agent"
            else f.customer_follows_agent
        )
        out["r"] = follows.r
        follower = ROLES.index(relation["follower"])
        out["truth_r"] = truth_follow_r(
            truth, relation["feature"], follower, plant=relation.get("plant") or "edge"
        )
    elif kind in ("converge", "diverge"):
        want = "converging" if kind == "converge" else "diverging"
        names = [relation["feature"]] if relation.get("feature") else list(features)
        out["detected"] = any(features[n].convergence.direction == want for n in names)
        out["flag"] = ",".join(f"{n}:{features[n].convergence.direction}" for n in names)
    elif kind in ("independent", "varying"):  # no relation: any flag is a false positive
        flagged = [
            n
            for n, f in features.items()
            if f.mirrored or f.convergence.direction in ("converging", "diverging")
        ]
        out["false_positive"] = bool(flagged)
        out["flag"] = ",".join(flagged)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--batch", action="store_true", help="other calls as sham partners")
    args = parser.parse_args()
    calls = sorted(p for p in args.folder.glob("*.wav"))
    if not calls:
        sys.exit(f"no .wav calls in {args.folder}: make them with bench/make_calls.py")
    results = [pipeline.analyze(p, mirror=False) for p in calls]
    shams = results if args.batch else []
    results = [pipeline.with_mirroring(r, shams=shams) for r in results]
    rows = []
    for path, result in zip(calls, results, strict=True):
        truth = json.loads(path.with_suffix(".json").read_text())
        row = score_call(result, truth)
        row["call"] = path.stem
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "relation"}), flush=True)

    print("\n| measure | value | target |\n|---|---|---|")
    talk = _per_channel(rows, "talk_err")
    print(
        f"| talk time error vs phonation segments, worst / median | {max(talk):.3f} / "
        f"{np.median(talk):.3f} | <= 0.15 |"
    )
    talk_u = _per_channel(rows, "talk_err_utt")
    print(
        f"| talk time error vs utterance spans, worst / median | {np.nanmax(talk_u):.3f} / "
        f"{np.nanmedian(talk_u):.3f} | <= 0.15 |"
    )
    agree = _per_channel(rows, "seg_agree")
    fa = _per_channel(rows, "seg_fa")
    print(
        f"| segments vs utterance spans (0.5 s bridged): agreement min / FA max, channels "
        f"with FA > 5% | {min(agree):.3f} / {max(fa):.3f}, {sum(x > 0.05 for x in fa)}/"
        f"{len(fa)} | >= 0.93 / <= 0.05 |"
    )
    for name, target in (
        ("pitch_median_st", 0.85),
        ("loudness_db", 0.9),
        ("articulation_rate_syl_per_s", 0.75),
    ):
        rs = [r[f"r_{name}"] for r in rows if np.isfinite(r[f"r_{name}"])]
        varying = [r[f"r_{name}"] for r in rows if r["variant"] == "varying"]
        print(
            f"| window r {name}: median all calls / varying calls | "
            f"{np.median(rs):.3f} / {', '.join(f'{v:.2f}' for v in varying) or '-'} | >= {target} |"
        )
    for feature in TURN_RATE_KEYS:
        err = _per_channel(rows, f"{feature}_turn_err")
        spread = _per_channel(rows, f"{feature}_turn_spread")
        print(
            f"| per-turn {feature}: measurement error / true spread within a speaker "
            f"(sd of log, median over channels) | {100 * np.nanmedian(err):.1f} % / "
            f"{100 * np.nanmedian(spread):.1f} % |  |"
        )
    ipu_r = _per_channel(rows, "pitch_variability_ipu_r")
    print(
        f"| per-IPU pitch_variability vs the clean utterance's f0 sd, r within a speaker "
        f"(median / min over channels) | {np.nanmedian(ipu_r):.2f} / {np.nanmin(ipu_r):.2f} |  |"
    )
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        if "detected" in r:
            by_kind[r["variant"]].append(r["detected"])
    planted = [d for v in by_kind.values() for d in v]
    for variant, hits in sorted(by_kind.items()):
        rs = [r for r in rows if r["variant"] == variant and "truth_r" in r]
        how = ""
        if rs:
            how = "truth r " + ", ".join(f"{r['truth_r']:.2f}" for r in rs) + "; pipeline r "
            how += ", ".join("-" if r["r"] is None else f"{r['r']:.2f}" for r in rs)
        print(f"| detected {variant} | {sum(hits)}/{len(hits)} | {how} |")
    if planted:
        print(
            f"| planted relations detected (all) | {np.mean(planted):.2f} "
            f"({sum(planted)}/{len(planted)}; {_wilson(planted)}) | >= 0.80 |"
        )
    fps = [r["false_positive"] for r in rows if "false_positive" in r]
    if fps:
        print(
            f"| false positives on independent calls | {np.mean(fps):.2f} "
            f"({sum(fps)}/{len(fps)}; {_wilson(fps)}) | <= 0.10 |"
        )


def _wilson(outcomes: list[bool]) -> str:
    """95 % Wilson interval of a share: with a few dozen calls it is wide, and says so."""
    ci = binomtest(sum(outcomes), len(outcomes)).proportion_ci(method="wilson")
    return f"95% CI {ci.low:.2f}-{ci.high:.2f}"


if __name__ == "__main__":
    main()
