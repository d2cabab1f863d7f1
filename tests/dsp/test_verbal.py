"""Echoes, echo questions and lexical mirroring on hand-made turns (no recogniser needed),
and the streaming cut of speech segments the recogniser reads."""

from __future__ import annotations

import numpy as np

from dsp.frames import HOP_S
from dsp.verbal import analyze_verbal
from dsp.verbal.echoes import RISE_ST, final_rise_st, find_echoes
from dsp.verbal.lexical import lexical_mirroring
from dsp.verbal.recognize import RecognizerInfo, Word, padded_spans, segment_audio
from dsp.verbal.turns import VerbalTurn, verbal_turns

INFO = RecognizerInfo("test", "0", "en-US", "-", "-", "-")


def _turn(speaker: int, start_s: float, text: str, *, word_s: float = 0.4) -> VerbalTurn:
    words = tuple(
        Word(w, start_s + i * word_s, start_s + (i + 1) * word_s)
        for i, w in enumerate(text.split())
    )
    return VerbalTurn(speaker, start_s, start_s + len(words) * word_s, words)


def _flat_f0(n_s: float = 200.0) -> np.ndarray:
    return np.full(int(n_s / HOP_S), 150.0)


def test_echo_of_the_partners_last_words_is_found() -> None:
    turns = [
        _turn(0, 0.0, "we need ten people to see the client"),
        _turn(1, 4.0, "ten people to see the client"),
    ]
    (echo,) = find_echoes(turns, [_flat_f0(), _flat_f0()])
    assert echo.speaker == 1
    assert echo.words == ("ten", "people", "client")
    assert (echo.partner_start_s, echo.start_s) == (0.0, 4.0)
    assert not echo.question  # flat pitch


def test_function_words_and_early_words_are_not_echoes() -> None:
    long_turn = "the garage " + " ".join(["and so it was"] * 6) + " on the phone"
    turns = [
        _turn(0, 0.0, long_turn),  # "garage" is 10 s before the end: not its end
        _turn(1, 12.0, "the garage is where it was"),  # repeats only it and function words
        _turn(0, 16.0, "garage"),  # echoes the customer's "garage", at its end
    ]
    echoes = find_echoes(turns, [_flat_f0(), _flat_f0()])
    assert [e.start_s for e in echoes] == [16.0]


def test_echo_question_needs_a_short_turn_ending_rising() -> None:
    f0 = _flat_f0()
    rise = np.linspace(0.0, 5.0, 60)  # 5 semitones over the last 0.6 s
    turns = [_turn(0, 0.0, "the invoice from march"), _turn(1, 2.0, "from march")]
    end = turns[1].end_s
    hi = int(round(end / HOP_S)) + 1
    rising = f0.copy()
    rising[hi - 60 : hi] = 150.0 * 2.0 ** (rise / 12.0)
    assert final_rise_st(rising, turns[1].start_s, end) > RISE_ST
    (echo,) = find_echoes(turns, [f0, rising])
    assert echo.question
    (echo,) = find_echoes(turns, [f0, f0])
    assert not echo.question
    long_answer = [turns[0], _turn(1, 2.0, "march " + "and then we went home " * 2)]
    hi = int(round(long_answer[1].end_s / HOP_S)) + 1
    rising_long = f0.copy()
    rising_long[hi - 60 : hi] = 150.0 * 2.0 ** (rise / 12.0)
    (echo,) = find_echoes(long_answer, [f0, rising_long])
    assert not echo.question  # too long for an echo question


def test_unvoiced_end_has_no_rise() -> None:
    assert np.isnan(final_rise_st(np.full(100, np.nan), 0.0, 1.0))


def _conversation(rng: np.random.Generator, *, repeat: bool, n: int = 60) -> list[VerbalTurn]:
    # 400 made-up content words (letters only: "aabzz", ...)
    vocab = ["".join(chr(97 + int(c)) for c in f"{i:03d}") + "zz" for i in range(400)]
    turns, t = [], 0.0
    prev: list[str] = []
    for i in range(n):
        words = [str(w) for w in rng.choice(vocab, 6)]
        if repeat and prev and rng.random() < 0.6:
            words[0] = prev[-1]
        turns.append(_turn(i % 2, t, " ".join(words)))
        t = turns[-1].end_s + 0.5
        prev = words
    return turns


def test_lexical_mirroring_needs_more_than_chance_overlap() -> None:
    mirrored = lexical_mirroring(_conversation(np.random.default_rng(1), repeat=True))
    assert mirrored.mirrored is True and mirrored.p is not None and mirrored.p < 0.001
    assert mirrored.adjacent is not None and mirrored.nonadjacent is not None
    assert mirrored.adjacent > mirrored.nonadjacent
    false = sum(
        bool(lexical_mirroring(_conversation(np.random.default_rng(s), repeat=False)).mirrored)
        for s in range(40)
    )
    assert false <= 6  # alpha 0.05 of 40: about 2


def test_too_few_exchanges_say_why() -> None:
    out = lexical_mirroring(_conversation(np.random.default_rng(0), repeat=True, n=8))
    assert out.mirrored is None and out.reason is not None and "fewer than 12" in out.reason


def test_words_go_to_the_turn_they_fall_in() -> None:
    words = [[Word("alpha", 0.1, 0.5), Word("gamma", 5.0, 5.4)], [Word("beta", 2.1, 2.5)]]
    turns = verbal_turns([np.array([[0.0, 1.0], [4.9, 6.0]]), np.array([[2.0, 3.0]])], words)
    assert [(t.speaker, [w.text for w in t.words]) for t in turns] == [
        (0, ["alpha"]),
        (1, ["beta"]),
        (0, ["gamma"]),
    ]


def test_analyze_verbal_counts_per_speaker() -> None:
    words = [
        [Word(w, 0.1 + 0.3 * i, 0.4 + 0.3 * i) for i, w in enumerate(["the", "parcel", "left"])]
        + [Word("parcel", 6.1, 6.5)],
        [Word(w, 2.1 + 0.3 * i, 2.4 + 0.3 * i) for i, w in enumerate(["left", "yesterday"])],
    ]
    turns_s = [np.array([[0.0, 1.0], [6.0, 7.0]]), np.array([[2.0, 3.0]])]
    out = analyze_verbal(INFO, words, turns_s, [_flat_f0(), _flat_f0()], speech_s=(2.0, 1.0))
    agent, customer = out.speakers
    assert (customer.echoes, customer.partner_turns) == (1, 1)
    assert customer.echoes_per_10_partner_turns == 10.0
    assert customer.examples[0].words == ("left",)
    assert (agent.echoes, agent.partner_turns) == (0, 1)  # "parcel" is not in "left yesterday"
    assert out.words == (4, 2)


def test_segments_are_cut_across_blocks_as_from_the_whole_call() -> None:
    rate = 8000
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((2, rate * 10)).astype(np.float32)
    spans = [np.array([[0.5, 1.2], [2.95, 3.4], [9.5, 10.0]]), np.array([[0.0, 4.5]])]
    blocks = [audio[:, i : i + 3000] for i in range(0, audio.shape[1], 3000)]
    cut = list(segment_audio(iter(blocks), rate, spans))
    assert [(c, round(s, 2)) for c, s, _ in sorted(cut, key=lambda x: (x[0], x[1]))] == [
        (0, 0.5),
        (0, 2.95),
        (0, 9.5),
        (1, 0.0),
    ]
    for channel, start_s, samples in cut:
        a = int(round(start_s * rate))
        np.testing.assert_array_equal(samples, audio[channel, a : a + samples.size])
    assert sum(x.size for c, _, x in cut if c == 1) == int(4.5 * rate)


def test_padding_merges_close_segments_and_stays_in_the_call() -> None:
    out = padded_spans(np.array([[0.1, 1.0], [1.3, 2.0], [5.0, 9.95]]), 0.2, 10.0)
    np.testing.assert_allclose(out, [[0.0, 2.2], [4.8, 10.0]])
