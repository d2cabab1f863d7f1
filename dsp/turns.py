"""Turn-taking statistics from the two parties' inter-pausal units (IPUs).

Definitions (see design/MIRRORING.md), in the order they are applied:

Backchannel
    An IPU of speaker S no longer than ``backchannel_max_s`` that sits inside the partner's
    floor: the partner P speaks within ``backchannel_gap_s`` before its start (a P IPU that
    started earlier and ends no more than ``backchannel_gap_s`` before it) and within
    ``backchannel_gap_s`` after its end (a P IPU that ends later and starts no more than
    ``backchannel_gap_s`` after it). "Yeah", "mm-hmm" said while P talks or in P's short pause.
    Backchannels are not turns and do not end P's turn.
Overlap within
    A non-backchannel IPU of S lying entirely inside one of P's IPUs (P talks through it):
    overlapping speech without a change of floor (Heldner & Edlund 2010 "overlap within").
    It is not a turn either; it is counted per speaker as ``overlaps_within``.
Turn
    A maximal run of one speaker's remaining IPUs (in order of start time) not interrupted by
    an IPU of the other speaker. Consecutive turns therefore alternate speakers; each change
    is a floor switch.
Floor transfer gap
    When S's turn follows P's turn: ``gap = S turn start - P turn end``. A gap >= 0 is a
    response with latency ``gap`` (0 included); a negative gap means S started while P was
    still speaking and P then stopped: an *interruption* by S (a successful overlapping
    takeover). Following the research convention, response latencies (median, p90) use only
    the transfers with a gap >= 0; interruptions are counted apart, and every signed gap is
    kept in ``floor_gaps_s``.
Silence
    A stretch of ``[0, duration_s]`` in which neither party speaks (backchannels count as
    speech) for at least ``silence_threshold_s``; leading and trailing silences included.

Talk time counts every IPU (backchannels included). Undefined statistics are NaN (e.g. the
latency of a speaker who never takes the floor after a gap); counts are plain ints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dsp.errors import ParameterError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SpeakerTurns:
    """Turn-taking statistics of one speaker.

    Attributes
    ----------
    talk_time_s : float
        Sum of the speaker's IPU durations, seconds (backchannels included).
    talk_ratio : float
        ``talk_time_s`` over both speakers' talk time (NaN if nobody talks).
    turns : int
        Number of turns.
    turn_segments : ndarray, shape (turns, 2)
        ``[start_s, end_s]`` of each turn (first IPU start to last IPU end).
    ipu_turn_index : ndarray of int64, shape (n_ipus,)
        For each of the speaker's IPUs (after sorting and merging overlapping ones; for the
        output of :func:`dsp.activity.ipus` that is the input order): index into
        ``turn_segments``, or -1 for a backchannel or an overlap within.
    backchannels : int
        Number of backchannel IPUs.
    backchannel_segments : ndarray, shape (backchannels, 2)
        ``[start_s, end_s]`` of each backchannel.
    overlaps_within : int
        Non-backchannel IPUs spoken entirely inside a partner IPU (no floor change).
    turn_latency_s : ndarray, shape (turns,)
        Per turn, the signed gap of the floor transfer to it (:func:`turn_latencies`; NaN
        for the call's opening turn).
    floor_gaps_s : ndarray, shape (k,)
        Signed gap of every floor transfer TO this speaker (negative = overlapping
        takeover): the finite ``turn_latency_s``.
    response_latency_median_s, response_latency_p90_s : float
        Median and 90th percentile of the non-negative ``floor_gaps_s``; NaN if none.
    interruptions : int
        Floor transfers to this speaker with a negative gap (started while the partner was
        speaking, and the partner then stopped).
    longest_monologue_s : float
        Longest turn, seconds; NaN if no turn.
    """

    talk_time_s: float
    talk_ratio: float
    turns: int
    turn_segments: FloatArray
    ipu_turn_index: IntArray
    backchannels: int
    backchannel_segments: FloatArray
    overlaps_within: int
    turn_latency_s: FloatArray
    response_latency_median_s: float
    response_latency_p90_s: float
    interruptions: int
    longest_monologue_s: float

    @property
    def floor_gaps_s(self) -> FloatArray:
        return self.turn_latency_s[np.isfinite(self.turn_latency_s)]


@dataclass(frozen=True)
class TurnTaking:
    """Result of :func:`turn_taking`: both speakers plus conversation-level statistics.

    Attributes
    ----------
    agent, customer : SpeakerTurns
        Per-speaker statistics (channel 0 and channel 1 by default).
    switches : int
        Floor changes (turn of one speaker followed by a turn of the other).
    switches_per_min : float
        ``switches`` per minute of call (``duration_s``).
    overlap_s : float
        Total time both speak at once (backchannels included), seconds.
    silences : ndarray, shape (k, 2)
        ``[start_s, end_s]`` where neither speaks for >= ``silence_threshold_s``.
    duration_s, backchannel_max_s, backchannel_gap_s, silence_threshold_s : float
        The call length and thresholds used (echoed).
    """

    agent: SpeakerTurns
    customer: SpeakerTurns
    switches: int
    switches_per_min: float
    overlap_s: float
    silences: FloatArray
    duration_s: float
    backchannel_max_s: float
    backchannel_gap_s: float
    silence_threshold_s: float

    @property
    def speakers(self) -> tuple[SpeakerTurns, SpeakerTurns]:
        """``(agent, customer)``, indexable by channel."""
        return (self.agent, self.customer)


def _clean_ipus(ipus_s: npt.ArrayLike, name: str, duration_s: float) -> FloatArray:
    """Validate, clip to ``[0, duration_s]``, sort, and merge overlapping IPUs of one speaker."""
    arr = np.asarray(ipus_s, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ParameterError(f"{name} must have shape (k, 2) [start_s, end_s], got {arr.shape}")
    arr = arr[np.isfinite(arr).all(axis=1)]
    if np.any(arr[:, 1] < arr[:, 0]):
        raise ParameterError(f"{name}: every IPU needs end_s >= start_s")
    arr = np.clip(arr, 0.0, duration_s)
    arr = arr[arr[:, 1] > arr[:, 0]]
    arr = arr[np.argsort(arr[:, 0], kind="stable")]
    if arr.shape[0] < 2:
        return arr.reshape(-1, 2)
    merged = [arr[0].copy()]
    for start, end in arr[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append(np.array([start, end]))
    return np.asarray(merged, dtype=np.float64).reshape(-1, 2)


def _union(segments: FloatArray) -> FloatArray:
    """Union of possibly overlapping segments, sorted, as disjoint ``(k, 2)``."""
    if segments.shape[0] == 0:
        return segments.reshape(0, 2)
    segs = segments[np.argsort(segments[:, 0], kind="stable")]
    out = [segs[0].copy()]
    for start, end in segs[1:]:
        if start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append(np.array([start, end]))
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def _intersection_s(a: FloatArray, b: FloatArray) -> float:
    """Total length of the intersection of two sets of disjoint segments, seconds."""
    total = 0.0
    i = j = 0
    while i < a.shape[0] and j < b.shape[0]:
        lo = max(a[i, 0], b[j, 0])
        hi = min(a[i, 1], b[j, 1])
        if hi > lo:
            total += hi - lo
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return total


def join_turn_pauses(
    own_s: npt.ArrayLike, partner_s: npt.ArrayLike, *, max_pause_s: float
) -> FloatArray:
    """One speaker's speech segments at the turn level: own IPUs joined across short pauses.

    Two consecutive IPUs of the speaker are joined when the pause between them is shorter
    than ``max_pause_s`` and the partner does not speak anywhere in it (a pause inside the
    speaker's own turn; a partner backchannel in the pause keeps them apart). This is how
    turn references (diarization RTTMs, hand-made turn annotations) draw a speaker's
    segments: a speaker who stops for 0.8 s to think still holds the floor.

    Parameters
    ----------
    own_s, partner_s : array_like, shape (k, 2)
        Sorted, disjoint ``[start_s, end_s]`` IPUs of the speaker and of the partner.
    max_pause_s : float
        Longest pause joined, seconds (>= 0; 0 returns the IPUs unchanged).

    Returns
    -------
    ndarray, shape (m, 2)
        Joined segments, ``m <= k``.
    """
    if max_pause_s < 0:
        raise ParameterError(f"max_pause_s must be >= 0, got {max_pause_s}")
    own = np.asarray(own_s, dtype=np.float64).reshape(-1, 2)
    partner = np.asarray(partner_s, dtype=np.float64).reshape(-1, 2)
    if own.shape[0] < 2 or max_pause_s == 0:
        return own.copy()
    gap_start, gap_end = own[:-1, 1], own[1:, 0]
    partner_in_gap = np.zeros(gap_start.shape, dtype=bool)
    if partner.shape[0]:
        # The first partner IPU ending after a gap starts is in the gap if it starts before
        # the gap ends (partner IPUs are disjoint and sorted, so their ends are sorted too).
        first = np.searchsorted(partner[:, 1], gap_start, side="right")
        starts_in_gap = partner[np.minimum(first, partner.shape[0] - 1), 0] < gap_end
        partner_in_gap = (first < partner.shape[0]) & starts_in_gap
    join = (gap_end - gap_start < max_pause_s) & ~partner_in_gap
    # A new segment starts at every IPU not joined to the one before it.
    starts = np.concatenate([[True], ~join])
    group = np.cumsum(starts) - 1
    out = np.empty((int(group[-1]) + 1, 2), dtype=np.float64)
    out[:, 0] = own[starts, 0]
    out[:, 1] = own[np.concatenate([starts[1:], [True]]), 1]
    return out


def _backchannel_flags(
    own: FloatArray, partner: FloatArray, max_s: float, gap_s: float
) -> npt.NDArray[np.bool_]:
    """Which of ``own``'s IPUs are backchannels inside ``partner``'s floor (see module doc)."""
    flags = np.zeros(own.shape[0], dtype=bool)
    if partner.shape[0] == 0:
        return flags
    for k, (start, end) in enumerate(own):
        if end - start > max_s:
            continue
        before = np.any((partner[:, 0] < start) & (partner[:, 1] >= start - gap_s))
        after = np.any((partner[:, 1] > end) & (partner[:, 0] <= end + gap_s))
        flags[k] = bool(before and after)
    return flags


def _within_flags(own: FloatArray, partner: FloatArray) -> npt.NDArray[np.bool_]:
    """Which of ``own``'s IPUs lie entirely inside a single ``partner`` IPU."""
    if partner.shape[0] == 0 or own.shape[0] == 0:
        return np.zeros(own.shape[0], dtype=bool)
    inside = (partner[None, :, 0] <= own[:, None, 0]) & (own[:, None, 1] <= partner[None, :, 1])
    return np.asarray(inside.any(axis=1), dtype=bool)


def _percentile_or_nan(x: FloatArray, q: float) -> float:
    return float(np.percentile(x, q)) if x.size else float("nan")


def turn_taking(
    ipus_agent: npt.ArrayLike,
    ipus_customer: npt.ArrayLike,
    *,
    duration_s: float,
    backchannel_max_s: float = 1.0,
    backchannel_gap_s: float = 1.0,
    silence_threshold_s: float = 3.0,
) -> TurnTaking:
    """Turns, backchannels, latencies, interruptions, overlap and silences of a two-party call.

    Parameters
    ----------
    ipus_agent, ipus_customer : array_like, shape (k, 2)
        Each party's IPUs ``[start_s, end_s]`` (e.g. from :func:`dsp.activity.ipus`). They are
        sorted, overlapping IPUs of one speaker merged, clipped to ``[0, duration_s]``; rows
        with NaN are ignored.
    duration_s : float
        Length of the call, seconds (> 0).
    backchannel_max_s : float
        Longest IPU that can be a backchannel, seconds.
    backchannel_gap_s : float
        The partner must be speaking within this many seconds before and after a short IPU
        for it to be a backchannel, seconds.
    silence_threshold_s : float
        Shortest stretch without speech reported in ``silences``, seconds.

    Returns
    -------
    TurnTaking
        Per-speaker :class:`SpeakerTurns` and conversation statistics; see the module
        docstring for the definitions.

    Raises
    ------
    ParameterError
        If a threshold or the duration is out of range, or IPUs are malformed.
    """
    for name, value, strict in (
        ("duration_s", duration_s, True),
        ("backchannel_max_s", backchannel_max_s, False),
        ("backchannel_gap_s", backchannel_gap_s, False),
        ("silence_threshold_s", silence_threshold_s, True),
    ):
        bad = not np.isfinite(value) or value < 0 or (strict and value == 0)
        if bad:
            rule = "> 0" if strict else ">= 0"
            raise ParameterError(f"{name} must be a finite number {rule} seconds, got {value}")
    duration_s = float(duration_s)
    ipus = (
        _clean_ipus(ipus_agent, "ipus_agent", duration_s),
        _clean_ipus(ipus_customer, "ipus_customer", duration_s),
    )

    # 1. Backchannels, then overlaps within the partner's (non-backchannel) speech.
    is_bc = [
        _backchannel_flags(ipus[s], ipus[1 - s], backchannel_max_s, backchannel_gap_s)
        for s in (0, 1)
    ]
    main = [ipus[s][~is_bc[s]] for s in (0, 1)]
    is_within = [_within_flags(main[s], main[1 - s]) for s in (0, 1)]

    # 2. Turns: runs of one speaker's floor-bearing IPUs, in order of start time.
    events: list[tuple[float, int, int]] = []  # (start_s, speaker, index into ipus[speaker])
    for s in (0, 1):
        idx_main = np.flatnonzero(~is_bc[s])
        for j, k in enumerate(idx_main):
            if not is_within[s][j]:
                events.append((float(ipus[s][k, 0]), s, int(k)))
    events.sort(key=lambda e: (e[0], e[1]))

    turn_index = [np.full(ipus[s].shape[0], -1, dtype=np.int64) for s in (0, 1)]
    turns: list[list[list[float]]] = [[], []]
    sequence: list[tuple[int, int]] = []  # (speaker, turn number) in floor order
    current = -1
    for _, spk, ik in events:
        start, end = ipus[spk][ik]
        if spk != current:
            turns[spk].append([start, end])
            sequence.append((spk, len(turns[spk]) - 1))
            current = spk
        else:
            turns[spk][-1][1] = max(turns[spk][-1][1], end)
        turn_index[spk][ik] = len(turns[spk]) - 1

    # 3. Floor transfers: the gap before each turn that follows a partner turn.
    segments = [np.asarray(turns[s], dtype=np.float64).reshape(-1, 2) for s in (0, 1)]
    latency = [turn_latencies(segments[s], segments[1 - s]) for s in (0, 1)]
    switches = max(0, len(sequence) - 1)

    # 4. Conversation level: overlap and silences over all speech (backchannels included).
    unions = (_union(ipus[0]), _union(ipus[1]))
    overlap_s = _intersection_s(unions[0], unions[1])
    both = _union(np.concatenate([ipus[0], ipus[1]]))
    edges = np.concatenate([[0.0], both.reshape(-1), [duration_s]]).reshape(-1, 2)
    silences = edges[(edges[:, 1] - edges[:, 0]) >= silence_threshold_s - 1e-9]

    talk = [float(np.sum(ipus[s][:, 1] - ipus[s][:, 0])) for s in (0, 1)]
    total_talk = talk[0] + talk[1]
    speakers = []
    for s in (0, 1):
        seg = segments[s]
        g = latency[s][np.isfinite(latency[s])]
        responses = g[g >= 0.0]
        speakers.append(
            SpeakerTurns(
                talk_time_s=talk[s],
                talk_ratio=talk[s] / total_talk if total_talk > 0 else float("nan"),
                turns=int(seg.shape[0]),
                turn_segments=seg,
                ipu_turn_index=turn_index[s],
                backchannels=int(is_bc[s].sum()),
                backchannel_segments=ipus[s][is_bc[s]].reshape(-1, 2),
                overlaps_within=int(is_within[s].sum()),
                turn_latency_s=latency[s],
                response_latency_median_s=_percentile_or_nan(responses, 50.0),
                response_latency_p90_s=_percentile_or_nan(responses, 90.0),
                interruptions=int(np.sum(g < 0.0)),
                longest_monologue_s=(
                    float(np.max(seg[:, 1] - seg[:, 0])) if seg.shape[0] else float("nan")
                ),
            )
        )
    return TurnTaking(
        agent=speakers[0],
        customer=speakers[1],
        switches=switches,
        switches_per_min=switches / (duration_s / 60.0),
        overlap_s=overlap_s,
        silences=silences.astype(np.float64).reshape(-1, 2),
        duration_s=duration_s,
        backchannel_max_s=float(backchannel_max_s),
        backchannel_gap_s=float(backchannel_gap_s),
        silence_threshold_s=float(silence_threshold_s),
    )


def turn_pauses(
    ipus_s: npt.ArrayLike, ipu_turn_index: npt.ArrayLike
) -> tuple[FloatArray, IntArray]:
    """Silent gaps between consecutive IPUs of the same turn, seconds, and each gap's turn.

    ``ipus_s`` (k, 2) in time order and ``ipu_turn_index`` (k,) as in
    :class:`SpeakerTurns` (-1 for backchannels and overlaps within, which belong to no turn).
    """
    ipus = np.asarray(ipus_s, dtype=np.float64).reshape(-1, 2)
    turn = np.asarray(ipu_turn_index, dtype=np.int64).ravel()
    if turn.size != ipus.shape[0]:
        raise ParameterError(f"ipu_turn_index has {turn.size} entries for {ipus.shape[0]} IPUs")
    same_turn = (turn[1:] == turn[:-1]) & (turn[1:] >= 0)
    gaps = ipus[1:, 0] - ipus[:-1, 1]
    return gaps[same_turn], turn[1:][same_turn]


def turn_mean_pauses(
    ipus_s: npt.ArrayLike, ipu_turn_index: npt.ArrayLike, n_turns: int
) -> FloatArray:
    """Per turn ``0 .. n_turns - 1``: the mean of its :func:`turn_pauses`, seconds (NaN for
    a one-IPU turn)."""
    gaps, gap_turn = turn_pauses(ipus_s, ipu_turn_index)
    keep = gap_turn < n_turns
    sums = np.bincount(gap_turn[keep], weights=gaps[keep], minlength=n_turns)
    counts = np.bincount(gap_turn[keep], minlength=n_turns)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def turn_latencies(turns_s: npt.ArrayLike, partner_turns_s: npt.ArrayLike) -> FloatArray:
    """Per turn of one speaker (rows of ``turns_s``, in time order): the floor transfer gap
    before it, seconds: its start minus the end of the partner's turn just before it
    (negative when the speaker took the floor before the partner stopped; NaN when no
    partner turn came between this speaker's previous turn and this one, e.g. the call's
    first turn). :func:`turn_taking`'s floor gaps and response latencies are these."""
    own = np.asarray(turns_s, dtype=np.float64).reshape(-1, 2)
    partner = np.asarray(partner_turns_s, dtype=np.float64).reshape(-1, 2)
    latency_s = np.full(own.shape[0], np.nan)
    if own.shape[0] and partner.shape[0]:
        order = np.argsort(partner[:, 0], kind="stable")
        p_start, p_end = partner[order, 0], partner[order, 1]
        last = np.searchsorted(p_start, own[:, 0], side="left") - 1
        prev_own_start = np.concatenate([[-np.inf], own[:-1, 0]])
        found = last >= 0
        found[found] &= p_start[last[found]] > prev_own_start[found]
        latency_s[found] = own[found, 0] - p_end[last[found]]
    return latency_s
