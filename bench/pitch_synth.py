"""Octave errors of dsp.pitch on espeak-ng synthetic calls through a telephone band.

Run from the repository root: ``python bench/pitch_synth.py [CALL_DIR] [--names a b ...]``
(default CALL_DIR bench/out/calls, made by ``python bench/make_calls.py``: stereo 8 kHz mu-law,
300-3400 Hz, espeak-ng voices; ``<name>.f0.npz`` holds ``f0_hz`` (2, T), pyin on the clean
voices, and ``<name>.json`` the per-window truth).

For every call and channel: the pipeline's speech mask for that speaker (the same frames
the pipeline tracks), candidates from ``f0_candidates`` on the decoded channel, then
``f0_path`` (one path) and ``speaker_f0_path``. On frames voiced in both track and truth:
gross error (> 20 % off) and sub-octave rate (track < 0.6 x truth), per call and pooled
over all calls; also the Pearson r of 16 s / 8 s window medians (semitones re 100 Hz,
both speakers pooled) against the truth windows, as bench/e2e_eval.py scores it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dsp import pipeline  # noqa: E402
from dsp.io import decode, iter_blocks  # noqa: E402
from dsp.pitch import f0_candidates, f0_path, hz_to_st, speaker_f0_path  # noqa: E402


def speech_masks(path: Path) -> np.ndarray:
    """(2, T) speech masks of agent and customer from the pipeline (channel order)."""
    params = pipeline.AnalysisParams()
    info, blocks = iter_blocks(path, block_s=60)
    tracks, tally = pipeline.frame_tracks(blocks, info.sample_rate_hz, params)
    result = pipeline.analyze_tracks(tracks, info, tally, params)
    return np.stack([result.speakers[pipeline.ROLES[ch]].speech for ch in (0, 1)])


def window_medians(f0_hz: np.ndarray, starts_s: list[float], window_s: float = 16.0) -> np.ndarray:
    st = hz_to_st(f0_hz)
    out = np.full(len(starts_s), np.nan)
    for j, s in enumerate(starts_s):
        seg = st[int(round(s / 0.01)) : int(round((s + window_s) / 0.01))]
        seg = seg[np.isfinite(seg)]
        if seg.size >= 50:
            out[j] = float(np.median(seg))
    return out


def evaluate(
    call_dir: Path, names: list[str], *, candidate_kwargs: dict | None = None, verbose: bool = True
) -> dict[str, dict[str, float]]:
    """Per-path pooled counts and windowed r; prints one line per call when ``verbose``."""
    kw = candidate_kwargs or {}
    pooled: dict[str, dict[str, float]] = {}
    for name in names:
        wav = call_dir / f"{name}.wav"
        truth = np.load(call_dir / f"{name}.f0.npz")["f0_hz"]
        meta = json.loads((call_dir / f"{name}.json").read_text())
        masks = speech_masks(wav)
        audio = decode(wav)
        line = [f"{name:14s}"]
        for path_name in ("single", "speaker"):
            errs = [0, 0, 0]
            ours_w, true_w = [], []
            for ch in (0, 1):
                cands = f0_candidates(audio.samples[ch], audio.info.sample_rate_hz, **kw)
                sp = masks[ch][: cands.n_frames]
                if sp.size < cands.n_frames:
                    sp = np.concatenate([sp, np.zeros(cands.n_frames - sp.size, bool)])
                if path_name == "single":
                    f = f0_path(cands, frame_mask=sp).f0_hz
                else:
                    f = speaker_f0_path(cands, speech=sp).f0_hz
                n = min(f.size, truth.shape[1])
                t, g = truth[ch, :n], f[:n]
                ok = np.isfinite(g) & np.isfinite(t) & (t > 0)
                ratio = g[ok] / t[ok]
                errs[0] += int(ok.sum())
                errs[1] += int(np.sum(np.abs(ratio - 1) > 0.2))
                errs[2] += int(np.sum(ratio < 0.6))
                win = meta["windows_16_8"]
                ours_w.append(window_medians(f, win["starts_s"]))
                true_w.append(np.asarray(win["pitch_st"][ch], dtype=float))
            a = np.concatenate(ours_w)
            b = np.concatenate([tw[: len(ow)] for tw, ow in zip(true_w, ours_w, strict=True)])
            okw = np.isfinite(a) & np.isfinite(b)
            r = float(np.corrcoef(a[okw], b[okw])[0, 1]) if okw.sum() >= 5 else float("nan")
            acc = pooled.setdefault(path_name, {"n": 0, "gross": 0, "sub": 0, "r": []})  # type: ignore[arg-type]
            acc["n"] += errs[0]
            acc["gross"] += errs[1]
            acc["sub"] += errs[2]
            acc["r"].append(r)  # type: ignore[union-attr]
            line.append(
                f"{path_name} gross {100 * errs[1] / max(errs[0], 1):5.1f} % "
                f"sub {100 * errs[2] / max(errs[0], 1):5.1f} % r {r:5.2f}"
            )
        if verbose:
            print("  ".join(line), flush=True)
    return pooled


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("call_dir", nargs="?", default="bench/out/calls")
    ap.add_argument("--names", nargs="*", help="call names (default: every *.f0.npz)")
    args = ap.parse_args()
    call_dir = Path(args.call_dir)
    if not call_dir.is_dir():
        sys.exit(f"{call_dir} not found: make the calls with python bench/make_calls.py")
    names = args.names or sorted(p.name[: -len(".f0.npz")] for p in call_dir.glob("*.f0.npz"))
    t0 = time.perf_counter()
    pooled = evaluate(call_dir, names)
    print(f"\npooled over {len(names)} calls ({time.perf_counter() - t0:.0f} s):")
    for path_name, acc in pooled.items():
        rs = np.asarray(acc["r"], dtype=float)
        print(
            f"  {path_name:8s} frames {int(acc['n']):7d}"
            f"  gross {100 * acc['gross'] / acc['n']:5.2f} %"
            f"  sub-octave {100 * acc['sub'] / acc['n']:5.2f} %  window r median "
            f"{np.nanmedian(rs):.2f} min {np.nanmin(rs):.2f}"
        )


if __name__ == "__main__":
    main()
