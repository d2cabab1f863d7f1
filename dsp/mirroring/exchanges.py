"""Turns and exchanges: both speakers' turns merged in time order with turn-initial,
turn-final and mean values per feature, the exchanges of each direction (the leader's
last turn, then the follower's answer), and each speaker's recent history of turn means."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dsp.errors import ParameterError
from dsp.mirroring.inputs import FloatArray, IntArray, SpeakerUnits, canonical


@dataclass(frozen=True, eq=False)
class Turns:
    """Turns of both speakers merged in time order, with per-feature values."""

    speaker: IntArray  # (T,) 0 agent, 1 customer
    start_s: FloatArray
    initial: dict[str, FloatArray]  # name -> (T,)
    final: dict[str, FloatArray]
    mean: dict[str, FloatArray]


#: Share of the edge IPU in a turn's initial / final value (the rest is the turn mean).
_EDGE_WEIGHT = 0.5


def speaker_turns(units: SpeakerUnits, role: int, names: Sequence[str]) -> Turns:
    start = np.asarray(units.start_s, dtype=np.float64).ravel()
    end = np.asarray(units.end_s, dtype=np.float64).ravel()
    turn = np.asarray(units.turn_index).ravel().astype(np.int64)
    k = start.size
    if end.size != k or turn.size != k:
        raise ParameterError(
            f"start_s, end_s and turn_index must have the same length, got {start.size}, "
            f"{end.size} and {turn.size}"
        )
    feats = canonical(units.features)
    tfeats = canonical(units.turn_features)
    for name, val in feats.items():
        if np.asarray(val).shape != (k,):
            raise ParameterError(
                f"feature {name!r} must have shape ({k},) like start_s, got {np.shape(val)}"
            )
    in_turn = (turn >= 0) & np.isfinite(start)
    order = np.lexsort((start[in_turn], turn[in_turn]))
    idx = np.flatnonzero(in_turn)[order]
    labels, first = np.unique(turn[idx], return_index=True)
    n_turns = labels.size
    bounds = np.append(first, idx.size)
    turn_start = np.array([start[idx[first]]]).reshape(-1) if n_turns else np.zeros(0)
    initial: dict[str, FloatArray] = {}
    final: dict[str, FloatArray] = {}
    mean: dict[str, FloatArray] = {}
    tlabels = None if units.turn_labels is None else np.asarray(units.turn_labels).ravel()
    for name in names:
        ini = np.full(n_turns, np.nan)
        fin = np.full(n_turns, np.nan)
        avg = np.full(n_turns, np.nan)
        if name in tfeats and tlabels is not None:
            tv = np.asarray(tfeats[name], dtype=np.float64).ravel()
            if tv.size != tlabels.size:
                raise ParameterError(
                    f"turn feature {name!r} has {tv.size} values for {tlabels.size} turn_labels"
                )
            lookup = dict(zip(tlabels.tolist(), tv.tolist(), strict=True))
            vals = np.array([lookup.get(int(lab), np.nan) for lab in labels], dtype=np.float64)
            ini, fin, avg = vals, vals.copy(), vals.copy()
        elif name in feats:
            v = np.asarray(feats[name], dtype=np.float64)[idx]
            ini, fin, avg = _turn_stats(v, bounds)
            ini = _EDGE_WEIGHT * ini + (1.0 - _EDGE_WEIGHT) * avg
            fin = _EDGE_WEIGHT * fin + (1.0 - _EDGE_WEIGHT) * avg
        initial[name], final[name], mean[name] = ini, fin, avg
    return Turns(
        speaker=np.full(n_turns, role, dtype=np.int64),
        start_s=np.asarray(turn_start, dtype=np.float64),
        initial=initial,
        final=final,
        mean=mean,
    )


def _trailing_mean(values: FloatArray, ends: IntArray, span: int) -> FloatArray:
    """Mean of the last ``span`` finite ``values`` before each index in ``ends`` (NaN if none)."""
    pos = np.flatnonzero(np.isfinite(values))
    cs = np.concatenate([[0.0], np.cumsum(values[pos])])
    c = np.searchsorted(pos, ends)  # finite values before each end
    m = np.minimum(c, span)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (cs[c] - cs[c - m]) / m
    return np.where(m > 0, out, np.nan)


def _turn_stats(v: FloatArray, bounds: IntArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """First / last / mean finite value of each turn ``v[bounds[t]:bounds[t+1]]``
    (vectorised)."""
    n_turns = bounds.size - 1
    ini = np.full(n_turns, np.nan)
    fin = np.full(n_turns, np.nan)
    avg = np.full(n_turns, np.nan)
    if n_turns <= 0:
        return ini, fin, avg
    pos = np.flatnonzero(np.isfinite(v))
    turn_of = np.searchsorted(bounds, pos, side="right") - 1
    if pos.size:
        turns_hit, first_i = np.unique(turn_of, return_index=True)
        last_i = pos.size - 1 - np.unique(turn_of[::-1], return_index=True)[1]
        ini[turns_hit] = v[pos[first_i]]
        fin[turns_hit] = v[pos[last_i]]
        sums = np.bincount(turn_of, weights=v[pos], minlength=n_turns)
        counts = np.bincount(turn_of, minlength=n_turns)
        hit = counts > 0
        avg[hit] = sums[hit] / counts[hit]
    return ini, fin, avg


def merge_turns(a: Turns, b: Turns, names: Sequence[str]) -> Turns:
    start = np.concatenate([a.start_s, b.start_s])
    order = np.argsort(start, kind="stable")
    return Turns(
        speaker=np.concatenate([a.speaker, b.speaker])[order],
        start_s=start[order],
        initial={n: np.concatenate([a.initial[n], b.initial[n]])[order] for n in names},
        final={n: np.concatenate([a.final[n], b.final[n]])[order] for n in names},
        mean={n: np.concatenate([a.mean[n], b.mean[n]])[order] for n in names},
    )


@dataclass(frozen=True, eq=False)
class Exchanges:
    """Exchange rows for one direction (follower role fixed)."""

    follower_turn: IntArray  # index into merged turns of the follower's answering turn
    leader_turn: IntArray  # the leader's turn just before
    prev_turn: IntArray  # the follower's own previous turn (-1 if none)
    leader_rank: IntArray  # rank of the leader turn among the leader's turns


def exchanges(turns: Turns, follower: int) -> Exchanges:
    spk = turns.speaker
    t_count = spk.size
    last_seen = np.full(2, -1, dtype=np.int64)
    rank = np.zeros(t_count, dtype=np.int64)
    counts = np.zeros(2, dtype=np.int64)
    fol, lead, prev = [], [], []
    for i in range(t_count):
        s = int(spk[i])
        rank[i] = counts[s]
        counts[s] += 1
        if i > 0 and s == follower and spk[i - 1] != follower:
            fol.append(i)
            lead.append(i - 1)
            prev.append(int(last_seen[follower]))
        last_seen[s] = i
    lead_arr = np.asarray(lead, dtype=np.int64)
    return Exchanges(
        follower_turn=np.asarray(fol, dtype=np.int64),
        leader_turn=lead_arr,
        prev_turn=np.asarray(prev, dtype=np.int64),
        leader_rank=rank[lead_arr] if lead_arr.size else np.zeros(0, dtype=np.int64),
    )


def take(values: FloatArray, index: IntArray) -> FloatArray:
    out = np.full(index.size, np.nan)
    ok = index >= 0
    out[ok] = values[index[ok]]
    return out


def history_mean(turns: Turns, name: str, span: int) -> FloatArray:
    """Per turn, the mean of its speaker's last ``span`` finite turn means (this turn
    included)."""
    out = np.full(turns.speaker.size, np.nan)
    for s in (0, 1):
        idx = np.flatnonzero(turns.speaker == s)
        out[idx] = _trailing_mean(turns.mean[name][idx], np.arange(1, idx.size + 1), span)
    return out


def speaker_turn_means(turns: Turns, name: str, speaker: int) -> FloatArray:
    """One speaker's per-turn means of ``name`` in time order, gaps dropped."""
    v = turns.mean[name][turns.speaker == speaker]
    return v[np.isfinite(v)]
