"""Feature-level synthetic calls with planted mirroring, for dsp.mirroring tests and bench.

A call is a turn-taking timeline (alternating turns of 1-5 IPUs, lognormal IPU durations,
within-turn pauses, gaps and small overlaps between turns, backchannels inside the
partner's turns) and, per speaker and feature, a latent prosody walk: AR(1) over that
speaker's IPUs around a speaker mean (plus optional drifts), observed with measurement
noise and NaNs (more often on short IPUs). Window series (16 s / 8 s, duration-weighted
means, NaN under 2 s of speech) are built from the observed IPU values, as the pipeline does.

Scenarios (``simulate_call(rng, scenario=...)``):

``independent``
    no relation; IPU-level AR(1) ``phi=0.7``.
``strong_ac``
    independent, ``phi=0.97`` (slow wandering).
``drift``
    independent walks plus a linear drift shared by both speakers (both get louder /
    faster / lower by one within-speaker sd over the call) and small independent random
    walks (sd 0.5 within-speaker sd at the end of the call).
``walk``
    stress case: large independent random walks (sd 1.5 within-speaker sds at the end of
    the call): the speakers do get closer or further apart, by chance.
``follow``
    ``follower``'s turn-initial latent value copies a share ``strength`` of the leader's
    turn-final latent deviation (scaled to the follower's spread) in ``feature``; the walk
    goes on from there.
``converge`` / ``diverge``
    in ``feature`` the two speakers' means move linearly toward (away from) each other over
    the call: distance ``0.5 + conv_sd`` -> 0.5 within-speaker sds (reversed for diverge).

Timing: each speaker's turns also carry ``pause`` and ``latency`` (``turn_features``, from
``dsp.turns.turn_mean_pauses`` and ``turn_latencies`` on the timeline, as the pipeline
computes them). Within-turn
pauses are drawn uniform in 0.2-0.9 s and gaps between turns normal (0.35 s, sd 0.4 s,
clipped to -0.3..2 s), independently; ``follow`` with ``feature`` ``"pause"`` or
``"latency"`` mixes a share ``strength`` of the leader's last value into the follower's
(see ``_timeline``). They are exact: no measurement noise.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dsp.mirroring import (  # noqa: E402
    PROSODY_FEATURES,
    TIMING_FEATURES,
    SpeakerUnits,
    WindowSeries,
)
from dsp.turns import turn_latencies, turn_mean_pauses  # noqa: E402

FloatArray = npt.NDArray[np.float64]

# name: (population mean, between-speaker sd, within-speaker sd, measurement noise sd)
FEATURE_MODEL = {
    "pitch_level": (5.0, 5.0, 1.2, 0.6),
    "pitch_variability": (2.5, 0.5, 0.5, 0.35),
    "loudness": (-25.0, 5.0, 2.0, 1.0),
    "speaking_rate": (4.0, 0.5, 0.5, 0.4),
    "articulation_rate": (5.0, 0.5, 0.5, 0.4),
}
SCENARIOS = ("independent", "strong_ac", "drift", "walk", "follow", "converge", "diverge")


@dataclass(frozen=True, eq=False)
class SimCall:
    """A simulated call: inputs for ``analyze_mirroring`` and what was planted."""

    agent: SpeakerUnits
    customer: SpeakerUnits
    windows: WindowSeries
    duration_s: float
    scenario: str
    feature: str | None
    follower: str | None


def _timeline(
    rng: np.random.Generator,
    duration_s: float,
    *,
    timing_follow: tuple[str, int, float] | None = None,
) -> list[tuple[int, float, float, int]]:
    """IPUs as (speaker, start_s, end_s, turn label or -1), in time order.

    ``timing_follow = (feature, follower, strength)`` plants following in a timing
    feature: the follower's pauses inside a turn (``"pause"``) or the gap before the
    follower's turn (``"latency"``) become ``(1 - strength) * drawn + strength * the
    leader's``: the mean pause of the leader's turn just before, or the gap before it. The
    draws are the same either way, so the rest of the call does not change.
    """
    ipus: list[tuple[int, float, float, int]] = []
    t = 0.5
    spk = int(rng.integers(2))
    turn = 0
    plant, plant_role, strength = timing_follow or ("", -1, 0.0)
    last_pause = [float("nan"), float("nan")]  # mean pause of each speaker's last turn
    gap_before = float("nan")  # the gap before the turn being drawn
    while t < duration_s - 2.0:
        n_ipu = 1 + min(int(rng.poisson(1.0)), 4)
        turn_start = t
        pauses: list[float] = []
        lead_pause = last_pause[1 - spk]
        copies = spk == plant_role
        for j in range(n_ipu):
            dur = float(np.clip(rng.lognormal(np.log(1.5), 0.55), 0.3, 8.0))
            if t + dur > duration_s:
                break
            ipus.append((spk, t, t + dur, turn))
            t += dur
            if j < n_ipu - 1:
                pause = float(rng.uniform(0.2, 0.9))
                if copies and plant == "pause" and np.isfinite(lead_pause):
                    pause = (1.0 - strength) * pause + strength * lead_pause
                pauses.append(pause)
                t += pause
        turn_end = t
        last_pause[spk] = float(np.mean(pauses)) if pauses else float("nan")
        if turn_end - turn_start > 1.5 and rng.random() < 0.4:  # partner backchannel
            bc = float(rng.uniform(turn_start + 0.3, turn_end - 0.5))
            ipus.append((1 - spk, bc, bc + float(rng.uniform(0.2, 0.5)), -1))
        gap = float(np.clip(rng.normal(0.35, 0.4), -0.3, 2.0))
        if 1 - spk == plant_role and plant == "latency" and np.isfinite(gap_before):
            gap = (1.0 - strength) * gap + strength * gap_before
        t += gap
        t = max(t, turn_end - 0.3)
        gap_before = t - turn_end
        spk = 1 - spk
        turn += 1
    ipus.sort(key=lambda x: x[1])
    return ipus


def simulate_call(
    rng: np.random.Generator,
    *,
    scenario: str = "independent",
    feature: str | None = None,
    follower: str | None = None,
    strength: float = 0.5,
    conv_sd: float = 3.0,
    phi: float | None = None,
    duration_s: float | None = None,
    nan_rate: float = 0.08,
    window_s: float = 16.0,
    hop_s: float = 8.0,
    plant: str = "edge",
    min_duration_s: float = 180.0,
    walk_sd: float | None = None,
) -> SimCall:
    """One synthetic call (see the module docstring for the scenarios).

    ``walk_sd`` (drift, walk) sets the random walks' sd at the end of the call, in
    within-speaker sds (default 0.5 for drift, 1.5 for walk). ``duration_s`` defaults to a
    uniform draw in ``min_duration_s``-15 minutes; ``phi``
    (IPU-level AR(1)
    coefficient) defaults to 0.97 for ``strong_ac`` and 0.7 otherwise. ``plant`` (follow):
    ``"edge"`` mixes the leader's turn-final value into the follower's first IPU only;
    ``"turn"`` mixes the leader's turn-mean value into every IPU of the follower's turn
    (the follower's whole turn copies the leader's previous turn).
    """
    if plant not in ("edge", "turn"):
        raise ValueError(f"plant must be 'edge' or 'turn', got {plant!r}")
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {SCENARIOS}")
    if duration_s is None:
        duration_s = float(rng.uniform(min_duration_s, 900.0))
    follower_role = {"agent": 0, "customer": 1}.get(follower or "", -1)
    timing = scenario == "follow" and feature in TIMING_FEATURES
    ipus = _timeline(
        rng,
        duration_s,
        timing_follow=(str(feature), follower_role, strength) if timing else None,
    )
    k = len(ipus)
    spk = np.array([u[0] for u in ipus], dtype=np.int64)
    start = np.array([u[1] for u in ipus])
    end = np.array([u[2] for u in ipus])
    label = np.array([u[3] for u in ipus], dtype=np.int64)
    # first / last IPU of each turn
    is_first = np.zeros(k, dtype=bool)
    is_last = np.zeros(k, dtype=bool)
    for lab in np.unique(label[label >= 0]):
        idx = np.flatnonzero(label == lab)
        is_first[idx[0]] = True
        is_last[idx[-1]] = True
    if phi is None:
        phi = 0.97 if scenario == "strong_ac" else 0.7
    frac = start / duration_s
    observed: dict[str, FloatArray] = {}
    for name in PROSODY_FEATURES:
        mu_pop, sd_between, sd_within, noise = FEATURE_MODEL[name]
        if name == "pitch_level":  # one male / female register each, or same register
            base = rng.choice([0.0, 11.0], size=2) + rng.normal(0.0, 1.5, 2)
        else:
            base = mu_pop + rng.normal(0.0, sd_between, 2)
        mean_t = np.repeat(base[None, :], k, axis=0)  # (k, 2) speaker means at each IPU
        if scenario in ("converge", "diverge") and name == feature:
            mid = float(base.mean())
            d0, d1 = (0.5 + conv_sd, 0.5) if scenario == "converge" else (0.5, 0.5 + conv_sd)
            sign = 1.0 if rng.random() < 0.5 else -1.0
            gap = (d0 + (d1 - d0) * frac) * sd_within / 2.0
            mean_t[:, 0] = mid - sign * gap
            mean_t[:, 1] = mid + sign * gap
        if scenario == "drift":
            shared = rng.choice([-1.0, 1.0]) * 1.0 * sd_within
            mean_t += (shared * frac)[:, None]
        if scenario in ("drift", "walk"):
            # independent random walks whose sd at the end of the call is walk_sd
            end_sd = walk_sd if walk_sd is not None else 0.5 if scenario == "drift" else 1.5
            steps = rng.normal(0.0, end_sd * sd_within / np.sqrt(max(k, 1)), (k, 2))
            mean_t += np.cumsum(steps, axis=0)
        innov = sd_within * np.sqrt(1.0 - phi**2)
        dev = np.zeros(2)
        started = np.zeros(2, dtype=bool)
        latent = np.zeros(k)
        last_final_dev = np.zeros(2)
        turn_sum = np.zeros(2)
        turn_n = np.zeros(2)
        last_mean_dev = np.zeros(2)
        for i in range(k):
            s = int(spk[i])
            if not started[s]:
                dev[s] = rng.normal(0.0, sd_within)
                started[s] = True
            else:
                dev[s] = phi * dev[s] + rng.normal(0.0, innov)
            if (
                scenario == "follow"
                and name == feature
                and s == follower_role
                and (is_first[i] or plant == "turn")
                and started[1 - s]
            ):
                lead = last_final_dev[1 - s] if plant == "edge" else last_mean_dev[1 - s]
                dev[s] = (1.0 - strength) * dev[s] + strength * lead
            latent[i] = mean_t[i, s] + dev[s]
            if is_first[i]:
                turn_sum[s], turn_n[s] = 0.0, 0.0
            turn_sum[s] += dev[s]
            turn_n[s] += 1.0
            if is_last[i]:
                last_final_dev[s] = dev[s]
                last_mean_dev[s] = turn_sum[s] / turn_n[s]
        obs = latent + rng.normal(0.0, noise, k)
        if name == "pitch_variability":
            obs = np.maximum(obs, 0.2)
        p_nan = nan_rate + np.where(end - start < 0.5, 0.4, 0.0)
        if name in ("pitch_level", "pitch_variability", "loudness"):
            p_nan = p_nan if name != "loudness" else np.full(k, nan_rate / 4)
        obs = np.where(rng.random(k) < p_nan, np.nan, obs)
        observed[name] = obs

    # each speaker's turns (labels in time order) and their spans: first IPU start to last
    # IPU end (a turn's IPUs do not overlap, so its last one ends last)
    turn_labels = [label[is_first & (spk == r)] for r in (0, 1)]
    spans = [
        np.column_stack([start[is_first & (spk == r)], end[is_last & (spk == r)]]) for r in (0, 1)
    ]

    def units(role: int) -> SpeakerUnits:
        m = spk == role
        labels = turn_labels[role]
        row = np.where(label[m] >= 0, np.searchsorted(labels, label[m]), -1)
        pause = turn_mean_pauses(np.column_stack([start[m], end[m]]), row, labels.size)
        latency = turn_latencies(spans[role], spans[1 - role])
        return SpeakerUnits(
            start_s=start[m],
            end_s=end[m],
            turn_index=label[m],
            features={n: v[m] for n, v in observed.items()},
            turn_features={"pause": pause, "latency": latency},
            turn_labels=labels,
        )

    agent, customer = units(0), units(1)
    windows = make_windows(agent, customer, duration_s, window_s=window_s, hop_s=hop_s)
    return SimCall(agent, customer, windows, duration_s, scenario, feature, follower)


def make_windows(
    agent: SpeakerUnits,
    customer: SpeakerUnits,
    duration_s: float,
    *,
    window_s: float = 16.0,
    hop_s: float = 8.0,
    min_speech_s: float = 2.0,
) -> WindowSeries:
    """Duration-weighted window means of each speaker's IPU values (TAMA)."""
    starts = np.arange(0.0, max(duration_s - window_s, 0.0) + 1e-9, hop_s)
    ends = starts + window_s
    values = {n: np.full((2, starts.size), np.nan) for n in PROSODY_FEATURES}
    coverage = np.zeros((2, starts.size))
    for row, u in enumerate((agent, customer)):
        lo = np.maximum(u.start_s[None, :], starts[:, None])
        hi = np.minimum(u.end_s[None, :], ends[:, None])
        ov = np.clip(hi - lo, 0.0, None)  # (W, k)
        coverage[row] = ov.sum(axis=1)
        for name in PROSODY_FEATURES:
            v = np.asarray(u.features[name], dtype=np.float64)
            ok = np.isfinite(v)
            wsum = ov[:, ok].sum(axis=1)
            with np.errstate(all="ignore"):
                mean = (ov[:, ok] * v[ok][None, :]).sum(axis=1) / wsum
            values[name][row] = np.where(
                (coverage[row] >= min_speech_s) & (wsum > 0.5), mean, np.nan
            )
    return WindowSeries(
        starts_s=starts, window_s=window_s, hop_s=hop_s, values=values, coverage=coverage
    )
