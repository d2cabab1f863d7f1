"""Lexical mirroring with a local baseline: is an answering turn's vocabulary closer to the
partner's turn just before it than to the partner's nearby other turns? The same
adjacent-versus-non-adjacent design and t-test as the prosodic local proximity
(:func:`dsp.mirroring.proximity.adjacency_test`), so words both speakers use all call long
(the topic, common words) raise both sides alike and do not count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dsp.mirroring.proximity import adjacency_test
from dsp.verbal.turns import VerbalTurn

#: The partner's turns 2..OFFSETS away (either side) form the baseline, as for prosody.
OFFSETS = 6
MIN_EXCHANGES = 12
ALPHA = 0.05


@dataclass(frozen=True)
class LexicalMirroring:
    """Share of an answer's content words found in the partner's adjacent turn, against
    the partner's non-adjacent turns; ``p`` of the difference (both directions pooled)."""

    adjacent: float | None
    nonadjacent: float | None
    difference: float | None
    p: float | None
    n_exchanges: int
    mirrored: bool | None
    reason: str | None


def overlap(answer: set[str], other: set[str]) -> float:
    """Share of ``answer``'s content word types also in ``other`` (NaN without any)."""
    return len(answer & other) / len(answer) if answer else float("nan")


def lexical_mirroring(turns: Sequence[VerbalTurn]) -> LexicalMirroring:
    vocab = [set(t.content()) for t in turns]
    rank = {}
    by_speaker: list[list[int]] = [[], []]
    for i, t in enumerate(turns):
        rank[i] = len(by_speaker[t.speaker])
        by_speaker[t.speaker].append(i)
    adj, non, start = [], [], []
    for i in range(1, len(turns)):
        leader = turns[i - 1].speaker
        if turns[i].speaker == leader:
            continue
        mine = vocab[i]
        others = by_speaker[leader]
        r = rank[i - 1]
        base = [
            overlap(mine, vocab[others[r + o]])
            for o in range(-OFFSETS, OFFSETS + 1)
            if abs(o) >= 2 and 0 <= r + o < len(others) and vocab[others[r + o]]
        ]
        adj.append(overlap(mine, vocab[i - 1]) if vocab[i - 1] else float("nan"))
        non.append(float(np.mean(base)) if base else float("nan"))
        start.append(turns[i].start_s)
    a, b = np.asarray(adj, dtype=np.float64), np.asarray(non, dtype=np.float64)
    d = a - b
    mean, p, n, reason = adjacency_test(d, np.asarray(start), min_exchanges=MIN_EXCHANGES)
    if mean is None:
        return LexicalMirroring(None, None, None, None, n, None, reason)
    used = np.isfinite(d)
    return LexicalMirroring(
        adjacent=float(a[used].mean()),
        nonadjacent=float(b[used].mean()),
        difference=mean,
        p=p,
        n_exchanges=n,
        mirrored=bool(p is not None and p < ALPHA and mean > 0),
        reason=None,
    )
