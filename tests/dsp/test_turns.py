"""dsp.turns: turn-taking numbers on exact IPU inputs with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsp.activity import ipus
from dsp.errors import ParameterError
from dsp.frames import segments_to_mask
from dsp.turns import (
    TurnTaking,
    join_turn_pauses,
    turn_latencies,
    turn_mean_pauses,
    turn_pauses,
    turn_taking,
)

# A 25 s call with every phenomenon once:
#   A holds 0-8 s (pause 5.0-5.5 inside), B backchannels at 3.0-3.4 (overlapping A),
#   B answers after 0.5 s (8.5-12), A interrupts at 11.5 (B stops at 12),
#   4 s of silence 15-19, B speaks 19-20.5, A answers after 0.3 s, trailing silence 22-25.
AGENT = np.array([[0.0, 5.0], [5.5, 8.0], [11.5, 15.0], [20.8, 22.0]])
CUSTOMER = np.array([[3.0, 3.4], [8.5, 12.0], [19.0, 20.5]])


@pytest.fixture()
def call() -> TurnTaking:
    return turn_taking(AGENT, CUSTOMER, duration_s=25.0)


def test_turns_and_backchannels(call: TurnTaking) -> None:
    a, b = call.agent, call.customer
    np.testing.assert_allclose(a.turn_segments, [[0.0, 8.0], [11.5, 15.0], [20.8, 22.0]])
    np.testing.assert_array_equal(a.ipu_turn_index, [0, 0, 1, 2])
    np.testing.assert_allclose(b.turn_segments, [[8.5, 12.0], [19.0, 20.5]])
    np.testing.assert_array_equal(b.ipu_turn_index, [-1, 0, 1])
    assert (a.turns, b.turns) == (3, 2)
    assert (a.backchannels, b.backchannels) == (0, 1)
    np.testing.assert_allclose(b.backchannel_segments, [[3.0, 3.4]])
    assert a.longest_monologue_s == pytest.approx(8.0)
    assert b.longest_monologue_s == pytest.approx(3.5)


def test_latencies_and_interruptions(call: TurnTaking) -> None:
    a, b = call.agent, call.customer
    np.testing.assert_allclose(a.floor_gaps_s, [-0.5, 0.3])
    np.testing.assert_allclose(b.floor_gaps_s, [0.5, 4.0])
    assert a.interruptions == 1 and b.interruptions == 0
    # Negative gaps are interruptions, not latencies.
    assert a.response_latency_median_s == pytest.approx(0.3)
    assert a.response_latency_p90_s == pytest.approx(0.3)
    assert b.response_latency_median_s == pytest.approx(2.25)
    assert b.response_latency_p90_s == pytest.approx(0.5 + 0.9 * 3.5)


def test_conversation_level(call: TurnTaking) -> None:
    assert call.switches == 4
    assert call.switches_per_min == pytest.approx(4 / (25.0 / 60.0))
    assert call.overlap_s == pytest.approx(0.4 + 0.5)
    np.testing.assert_allclose(call.silences, [[15.0, 19.0], [22.0, 25.0]])
    assert call.agent.talk_time_s == pytest.approx(12.2)
    assert call.customer.talk_time_s == pytest.approx(5.4)
    assert call.agent.talk_ratio == pytest.approx(12.2 / 17.6)
    assert call.agent.talk_ratio + call.customer.talk_ratio == pytest.approx(1.0)
    assert (call.backchannel_max_s, call.silence_threshold_s, call.duration_s) == (1.0, 3.0, 25.0)


def test_channel_swap_symmetry(call: TurnTaking) -> None:
    swapped = turn_taking(CUSTOMER, AGENT, duration_s=25.0)
    for x, y in ((call.agent, swapped.customer), (call.customer, swapped.agent)):
        np.testing.assert_allclose(x.turn_segments, y.turn_segments)
        np.testing.assert_allclose(x.floor_gaps_s, y.floor_gaps_s)
        assert (x.backchannels, x.interruptions) == (y.backchannels, y.interruptions)
    assert swapped.overlap_s == pytest.approx(call.overlap_s)
    assert swapped.switches == call.switches


def test_backchannel_in_partner_pause_does_not_end_turn() -> None:
    r = turn_taking([[0.0, 4.0], [4.6, 9.0]], [[4.1, 4.5]], duration_s=10.0)
    assert r.agent.turns == 1 and r.customer.turns == 0
    assert r.customer.backchannels == 1
    assert r.switches == 0
    assert math.isnan(r.customer.response_latency_median_s)


def test_short_answer_that_keeps_the_floor_is_a_turn() -> None:
    # "Okay." after the agent finished, and the agent does not resume: a turn, not a backchannel.
    r = turn_taking([[0.0, 4.0]], [[4.5, 5.0]], duration_s=6.0)
    assert r.customer.turns == 1 and r.customer.backchannels == 0
    assert r.customer.response_latency_median_s == pytest.approx(0.5)
    # With the agent resuming more than backchannel_gap_s later it is still a turn ...
    r2 = turn_taking([[0.0, 4.0], [6.5, 8.0]], [[4.5, 5.0]], duration_s=9.0)
    assert r2.customer.turns == 1 and r2.switches == 2
    # ... and within it, a backchannel.
    r3 = turn_taking([[0.0, 4.0], [5.5, 8.0]], [[4.5, 5.0]], duration_s=9.0)
    assert r3.customer.backchannels == 1 and r3.switches == 0 and r3.agent.turns == 1


def test_long_overlap_within_partner_speech_is_not_a_turn() -> None:
    r = turn_taking([[0.0, 10.0]], [[2.0, 4.5]], duration_s=10.0)
    assert r.customer.turns == 0 and r.customer.overlaps_within == 1
    assert r.customer.backchannels == 0
    assert r.agent.turns == 1 and r.switches == 0
    assert r.overlap_s == pytest.approx(2.5)


def test_backchannel_threshold_is_respected() -> None:
    agent = [[0.0, 10.0]]
    short = turn_taking(agent, [[3.0, 3.9]], duration_s=10.0, backchannel_max_s=1.0)
    assert short.customer.backchannels == 1
    long = turn_taking(agent, [[3.0, 4.1]], duration_s=10.0, backchannel_max_s=1.0)
    assert long.customer.backchannels == 0 and long.customer.overlaps_within == 1


def test_empty_and_one_sided_calls() -> None:
    r = turn_taking(np.zeros((0, 2)), [], duration_s=5.0)
    assert r.agent.turns == 0 and r.switches == 0
    assert math.isnan(r.agent.talk_ratio) and math.isnan(r.agent.longest_monologue_s)
    np.testing.assert_allclose(r.silences, [[0.0, 5.0]])
    one = turn_taking([[1.0, 2.0], [2.5, 4.0]], [], duration_s=4.5)
    assert one.agent.turns == 1 and one.agent.talk_ratio == 1.0
    assert one.customer.talk_ratio == 0.0
    assert one.silences.shape == (0, 2)
    assert math.isnan(one.agent.response_latency_median_s)


def test_unsorted_overlapping_and_out_of_range_ipus_are_cleaned() -> None:
    r = turn_taking([[5.0, 6.0], [0.0, 2.0], [1.5, 3.0], [9.0, 12.0]], [], duration_s=10.0)
    np.testing.assert_allclose(r.agent.turn_segments, [[0.0, 10.0]])
    assert r.agent.talk_time_s == pytest.approx(3.0 + 1.0 + 1.0)
    assert r.agent.ipu_turn_index.shape == (3,)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"duration_s": 0.0},
        {"duration_s": float("nan")},
        {"duration_s": 10.0, "backchannel_max_s": -1.0},
        {"duration_s": 10.0, "silence_threshold_s": 0.0},
        {"duration_s": 10.0, "backchannel_gap_s": float("inf")},
    ],
)
def test_bad_parameters_raise(kwargs: dict[str, float]) -> None:
    with pytest.raises(ParameterError):
        turn_taking([[0.0, 1.0]], [], **kwargs)


def test_bad_ipus_raise() -> None:
    with pytest.raises(ParameterError):
        turn_taking([[0.0, 1.0, 2.0]], [], duration_s=5.0)
    with pytest.raises(ParameterError):
        turn_taking([[2.0, 1.0]], [], duration_s=5.0)


def test_from_frame_masks_via_ipus() -> None:
    # The same call expressed as 10 ms masks and IPU extraction gives the same turns.
    n = 2500
    agent = ipus(segments_to_mask(AGENT, n), min_pause_s=0.2, min_ipu_s=0.1)
    customer = ipus(segments_to_mask(CUSTOMER, n), min_pause_s=0.2, min_ipu_s=0.1)
    r = turn_taking(agent, customer, duration_s=25.0)
    np.testing.assert_allclose(r.agent.turn_segments, [[0.0, 8.0], [11.5, 15.0], [20.8, 22.0]])
    assert r.agent.interruptions == 1 and r.customer.backchannels == 1


def test_join_turn_pauses_joins_only_pauses_inside_own_turn() -> None:
    own = np.array([[0.0, 1.0], [1.8, 3.0], [3.9, 5.0], [7.0, 8.0], [8.5, 9.0]])
    # The partner backchannels in the 3.0-3.9 pause and speaks in the long 5.0-7.0 pause.
    partner = np.array([[3.2, 3.5], [5.5, 6.5]])
    joined = join_turn_pauses(own, partner, max_pause_s=1.0)
    np.testing.assert_allclose(joined, [[0.0, 3.0], [3.9, 5.0], [7.0, 9.0]])
    # Pauses as long as the limit stay apart; 0 returns the IPUs; no partner at all.
    np.testing.assert_allclose(
        join_turn_pauses(own, partner, max_pause_s=0.8), own[[0, 1, 2]].tolist() + [[7.0, 9.0]]
    )
    np.testing.assert_allclose(join_turn_pauses(own, partner, max_pause_s=0.0), own)
    np.testing.assert_allclose(
        join_turn_pauses(own, np.empty((0, 2)), max_pause_s=2.5), [[0.0, 9.0]]
    )
    assert join_turn_pauses(np.empty((0, 2)), partner, max_pause_s=1.0).shape == (0, 2)
    with pytest.raises(ParameterError):
        join_turn_pauses(own, partner, max_pause_s=-1.0)


def test_turn_timing_per_turn(call: TurnTaking) -> None:
    """Per turn: the pause inside it and the signed floor gap before it, matching the
    call's floor gaps; the call's first turn has no latency, one-IPU turns no pause."""
    a, b = call.agent, call.customer
    pause = turn_mean_pauses(AGENT, a.ipu_turn_index, a.turns)
    latency = turn_latencies(a.turn_segments, b.turn_segments)
    np.testing.assert_allclose(pause, [0.5, np.nan, np.nan])
    np.testing.assert_allclose(latency, [np.nan, -0.5, 0.3])
    np.testing.assert_allclose(latency[1:], a.floor_gaps_s)
    pause = turn_mean_pauses(CUSTOMER, b.ipu_turn_index, b.turns)
    latency = turn_latencies(b.turn_segments, a.turn_segments)
    np.testing.assert_allclose(pause, [np.nan, np.nan])  # the backchannel is no pause
    np.testing.assert_allclose(latency, b.floor_gaps_s)
    gaps, gap_turn = turn_pauses(AGENT, a.ipu_turn_index)
    np.testing.assert_allclose(gaps, [0.5])
    np.testing.assert_array_equal(gap_turn, [0])


def test_turn_timing_without_partner_and_bad_input() -> None:
    own = np.array([[0.0, 1.0], [1.4, 2.0], [2.6, 3.0]])
    pause = turn_mean_pauses(own, [0, 0, 0], 1)
    latency = turn_latencies([[0.0, 3.0]], np.empty((0, 2)))
    np.testing.assert_allclose(pause, [0.5])
    np.testing.assert_allclose(latency, [np.nan])
    # Two own turns with no partner turn between them: the second has no latency either.
    pause = turn_mean_pauses(own, [0, 1, 1], 2)
    latency = turn_latencies([[0.0, 1.0], [1.4, 3.0]], [[-5.0, -4.0]])
    np.testing.assert_allclose(pause, [np.nan, 0.6])
    np.testing.assert_allclose(latency, [4.0, np.nan])
    with pytest.raises(ParameterError):
        turn_pauses(own, [0, 0])
