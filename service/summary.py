"""The report in words: the ``summary`` sentences and each feature's verdict.

Pure functions of a :class:`models.report.Report` (no I/O, no web framework): the report
builder stores :func:`summarize` in ``Report.summary``, the HTML page
(``service.report_page``) shows the same sentences and :func:`feature_verdict` per feature.
Every word stands for a statistic of the report (docs/report.md, "The summary"):

- *adapted to* / *followed*: the feature's ``follower`` (significant directional synchrony
  after the call's correction, the larger ``r``); the evidence is graded by that
  direction's ``p_adj`` (:func:`evidence_words`);
- *moved together* / *moved apart*: stretches of the descriptive rolling correlation
  (``mirroring.timeline``) at or beyond :data:`TOGETHER_R` (:func:`timeline_stretches`);
- *grew closer* / *drifted apart*: convergence ``direction``; who moved is read from
  ``agent_moved`` / ``customer_moved`` and their 95 % intervals (:func:`movement_words`);
- *too short to tell*: the ``mirroring.low_power`` warning, or no mirroring statistic at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from dsp.mirroring import LARGE_EFFECT_R
from models.report import (
    ConvergenceResult,
    DirectionalSynchrony,
    DirectionScore,
    FeatureMirroring,
    Mirroring,
    Report,
    Speaker,
    TimelinePoint,
)

Role = Literal["agent", "customer"]
ROLES: tuple[Role, Role] = ("agent", "customer")

#: Plain names of the mirroring features (report order).
FEATURE_WORDS: dict[str, str] = {
    "pitch_level": "pitch",
    "pitch_variability": "intonation range",
    "loudness": "loudness",
    "speaking_rate": "speaking rate",
    "articulation_rate": "articulation rate",
    "pause": "pauses",
    "latency": "response timing",
}
#: Plain units of the features' values.
UNIT_WORDS: dict[str, str] = {"st": "semitones", "z": "sd", "syll/s": "syllables/s", "s": "s"}
DIMENSION_WORDS = {"tone": "tone (pitch, intonation, loudness)", "tempo": "tempo (speech rate)"}

#: Rolling correlation at or above which the timeline counts the speakers as moving
#: together (and at or below minus it, apart): a large correlation (Cohen).
TOGETHER_R = LARGE_EFFECT_R
#: Fewest consecutive timeline points a stretch needs to be named (shorter ones flicker).
MIN_STRETCH_POINTS = 3
#: Evidence grades by the adjusted p-value: below each bound, the words.
EVIDENCE_GRADES = ((0.001, "very strong evidence"), (0.01, "strong evidence"))
LOW_POWER_WARNING = "mirroring.low_power"


# -- small formatting helpers ------------------------------------------------------------


def clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss`` from an hour) of a time on the call."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def duration_words(seconds: float) -> str:
    """``45 s``, ``3 min 20 s``, ``1 h 02 min``."""
    total = max(0, round(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _join(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _other(role: Role) -> Role:
    return "customer" if role == "agent" else "agent"


def _p_text(p: float) -> str:
    return "p < 0.0001" if p < 0.0001 else f"p = {p:.2g}" if p < 0.01 else f"p = {p:.2f}"


def evidence_words(p_adj: float, alpha: float) -> str:
    """How strong a significant result's evidence is, by its adjusted p-value: below 0.001
    very strong, below 0.01 strong, below ``alpha`` moderate."""
    for bound, words in EVIDENCE_GRADES:
        if p_adj < bound:
            return words
    return "moderate evidence" if p_adj < alpha else "no evidence"


# -- what the report says, read from its statistics --------------------------------------


def follow_test(feature: FeatureMirroring, follower: Role) -> DirectionalSynchrony:
    """The directional test in which ``follower`` follows the other speaker."""
    sync = feature.synchrony
    return sync.agent_follows_customer if follower == "agent" else sync.customer_follows_agent


def low_power(report: Report) -> bool:
    """The call is too short to show following weaker than a large effect
    (``mirroring.low_power``), or no directional test could run at all."""
    if any(w.code == LOW_POWER_WARNING for w in report.warnings):
        return True
    return report.mirroring is None or report.mirroring.detectable_r is None


@dataclass(frozen=True)
class Stretch:
    """A stretch of the call where the rolling correlation stayed at or beyond
    :data:`TOGETHER_R` (together) or at or below ``-TOGETHER_R`` (apart)."""

    start_s: float
    end_s: float
    together: bool


def _point_r(point: TimelinePoint, key: str) -> float | None:
    if key == "tone":
        return point.tone_r
    if key == "tempo":
        return point.tempo_r
    return point.features.get(key)  # type: ignore[call-overload]


def timeline_stretches(timeline: Sequence[TimelinePoint], key: str) -> list[Stretch]:
    """Stretches where the two speakers' ``key`` (``tone``, ``tempo`` or a feature) moved
    together or apart, in time order.

    Each timeline point is a rolling correlation over a span of windows; it stands for the
    middle of its span, ``± half the step`` between points. Runs of at least
    :data:`MIN_STRETCH_POINTS` points at ``r >= TOGETHER_R`` (``<= -TOGETHER_R``) are a
    stretch together (apart).
    """
    if not timeline:
        return []
    mids = [(p.start_s + p.end_s) / 2 for p in timeline]
    step = (mids[-1] - mids[0]) / (len(mids) - 1) if len(mids) > 1 else 0.0
    out: list[Stretch] = []
    for together in (True, False):
        run: list[int] = []
        for i, point in enumerate([*timeline, None]):
            r = None if point is None else _point_r(point, key)
            hit = r is not None and (r >= TOGETHER_R if together else r <= -TOGETHER_R)
            if hit:
                run.append(i)
                continue
            if len(run) >= MIN_STRETCH_POINTS:
                start = max(0.0, mids[run[0]] - step / 2)
                out.append(Stretch(start, mids[run[-1]] + step / 2, together))
            run = []
    return sorted(out, key=lambda s: s.start_s)


def movement_words(convergence: ConvergenceResult, role: Role) -> str | None:
    """Who moved, from ``agent_moved`` / ``customer_moved`` and their 95 % intervals:
    ``moved toward`` / ``moved away from`` the other when the interval excludes 0, None
    when it does not (no measurable movement)."""
    moved = convergence.agent_moved if role == "agent" else convergence.customer_moved
    ci = convergence.agent_moved_ci if role == "agent" else convergence.customer_moved_ci
    if moved is None or ci is None:
        return None
    if ci[0] > 0:
        return f"the {role} moved toward the {_other(role)}"
    if ci[1] < 0:
        return f"the {role} moved away from the {_other(role)}"
    return None


def feature_verdict(mirroring: Mirroring, name: str) -> str:
    """One feature's result in words, e.g. "The customer followed the agent's speaking rate
    turn by turn (r = 0.73, adjusted p = 0.0002: very strong evidence)." """
    feature = mirroring.features[name]  # type: ignore[index]
    words = FEATURE_WORDS[name]
    unit = UNIT_WORDS.get(feature.unit, feature.unit)
    parts: list[str] = []
    if feature.follower is not None:
        test = follow_test(feature, feature.follower)
        assert test.r is not None and test.p_adj is not None
        parts.append(
            f"The {feature.follower} followed the {_other(feature.follower)}'s {words} turn "
            f"by turn (r = {test.r:.2f}, adjusted {_p_text(test.p_adj)}: "
            f"{evidence_words(test.p_adj, mirroring.alpha)})."
        )
    for role in ROLES:
        test = follow_test(feature, role)
        if (
            role != feature.follower
            and test.r is not None
            and test.p_adj is not None
            and test.p_adj < mirroring.alpha
        ):
            how = "also followed" if test.r > 0 else "moved against"
            parts.append(
                f"The {role} {how} the {_other(role)}'s {words} (r = {test.r:.2f}, adjusted "
                f"{_p_text(test.p_adj)})."
            )
    conv = feature.convergence
    if conv.direction in ("converging", "diverging") and conv.p_adj is not None:
        grew = "grew closer" if conv.direction == "converging" else "drifted apart"
        movers = [m for m in (movement_words(conv, r) for r in ROLES) if m]
        who = f": {_join(movers)}" if movers else ""
        span = ""
        if conv.distance_start is not None and conv.distance_end is not None:
            span = f", from {conv.distance_start:.2g} to {conv.distance_end:.2g} {unit} apart"
        parts.append(
            f"Their {words} {grew} over the call{span}{who} "
            f"({evidence_words(conv.p_adj, mirroring.alpha)})."
        )
    windowed = feature.synchrony.windowed
    if windowed.r is not None and windowed.p_adj is not None and windowed.p_adj < mirroring.alpha:
        how = "moved together" if windowed.r > 0 else "moved in opposite directions"
        parts.append(
            f"Minute by minute their {words} {how} (r = {windowed.r:.2f}, adjusted "
            f"{_p_text(windowed.p_adj)})."
        )
    local = feature.proximity["local"]
    if local.value is not None and local.p_adj is not None and local.p_adj < mirroring.alpha:
        closer = "closer to" if local.value > 0 else "further from"
        parts.append(f"Answers were {closer} the turn just heard than to other turns.")
    if parts:
        return " ".join(parts)
    if feature.mirrored is None:
        return f"Not measured: {feature.reason or 'too little speech'}."
    needed = [
        t.r_needed for t in (follow_test(feature, r) for r in ROLES) if t.r_needed is not None
    ]
    if needed:
        return (
            f"No following shown: on this call it would show if stronger than "
            f"r = {min(needed):.2f}."
        )
    reasons = [t.reason for t in (follow_test(feature, r) for r in ROLES) if t.reason]
    if reasons:
        return f"Who follows whom not measured: {reasons[0]}; no other mirroring shown."
    return "No mirroring shown."


# -- the summary -------------------------------------------------------------------------


def _talk_sentence(report: Report) -> str:
    agent, customer = report.speakers.agent, report.speakers.customer
    length = duration_words(report.audio.duration_s)
    if agent.talk_ratio is None or customer.talk_ratio is None:
        return f"No speech was found on either channel of this {length} call."
    shares = {"agent": agent.talk_ratio, "customer": customer.talk_ratio}
    silent = [role for role in ROLES if shares[role] == 0]
    if silent:
        return (
            f"Only the {_other(silent[0])} spoke in this {length} call: the {silent[0]}'s "
            "channel holds no speech."
        )
    sentence = (
        f"In this {length} call the agent did {100 * agent.talk_ratio:.0f} % of the talking "
        f"and the customer {100 * customer.talk_ratio:.0f} %"
    )
    longest = _longest(agent, customer)
    if longest is not None:
        role, seconds = longest
        sentence += f"; the longest monologue was the {role}'s ({duration_words(seconds)})"
    return sentence + "."


def _longest(agent: Speaker, customer: Speaker) -> tuple[Role, float] | None:
    found = [
        (role, s.longest_monologue_s)
        for role, s in zip(ROLES, (agent, customer), strict=True)
        if s.longest_monologue_s is not None
    ]
    if not found:
        return None
    role, seconds = max(found, key=lambda item: item[1])
    return role, float(seconds)


def _following_sentence(mirroring: Mirroring, short: bool) -> str:
    by_follower: dict[Role, list[tuple[str, float]]] = {"agent": [], "customer": []}
    for name, feature in mirroring.features.items():
        if feature.follower is not None:
            p_adj = follow_test(feature, feature.follower).p_adj
            assert p_adj is not None
            by_follower[feature.follower].append((name, p_adj))
    clauses = []
    for role in ROLES:
        found = by_follower[role]
        if found:
            grades = [evidence_words(p, mirroring.alpha) for _, p in found]
            if len(set(grades)) == 1:  # one grade for all: said once
                names = f"{_join([FEATURE_WORDS[n] for n, _ in found])} ({grades[0]})"
            else:
                names = _join(
                    [f"{FEATURE_WORDS[n]} ({g})" for (n, _), g in zip(found, grades, strict=True)]
                )
            clauses.append(f"the {role} adapted turn by turn to the {_other(role)}'s {names}")
    if clauses:
        text = _join(clauses)
        return text[0].upper() + text[1:] + "."
    if short:
        return "Who adapted to whom cannot be told from this call."
    needed = mirroring.detectable_r
    bound = f": following stronger than about r = {needed:.2f} would have shown" if needed else ""
    return f"Neither speaker measurably adapted to the other{bound}."


def _score_sentence(mirroring: Mirroring) -> str | None:
    """The dimensions' scores, when one is not within chance, grouped by follower."""
    clauses = []
    below: dict[Role, list[str]] = {"agent": [], "customer": []}
    for role in ROLES:
        above = []
        for dimension in ("tone", "tempo"):
            score: DirectionScore | None = getattr(getattr(mirroring.scores, dimension), role)
            if score is not None and score.verdict == "above chance":
                above.append(f"{score.score:.0f} of 100 in {dimension}")
            elif score is not None and score.verdict == "below chance":
                below[role].append(dimension)
        if above:
            clauses.append(f"the {role}'s following of the {_other(role)} scores {_join(above)}")
    if below["agent"] and below["agent"] == below["customer"]:
        clauses.append(f"each moved against the other in {_join(below['agent'])} (disentrainment)")
    else:
        clauses += [
            f"the {role} moved against the {_other(role)} in {_join(below[role])} (disentrainment)"
            for role in ROLES
            if below[role]
        ]
    if not clauses:
        return None
    return "Overall, " + _join(clauses) + " (0 = no more than chance gives)."


def _timeline_sentence(mirroring: Mirroring) -> str | None:
    """When their tone / tempo moved together or apart (the dimensions with a stretch)."""
    clauses = []
    for dimension in ("tone", "tempo"):
        stretches = timeline_stretches(mirroring.timeline, dimension)
        together = [s for s in stretches if s.together]
        apart = [s for s in stretches if not s.together]
        spans = []
        if together:
            spans.append("moved together " + _spans(together))
        if apart:
            spans.append("moved apart " + _spans(apart))
        if spans:
            clauses.append(f"their {dimension} {' and '.join(spans)}")
    if not clauses:
        return None
    text = "; ".join(clauses)
    return text[0].upper() + text[1:] + f" (rolling correlation beyond ±{TOGETHER_R:.1f})."


def _spans(stretches: Sequence[Stretch]) -> str:
    shown = [f"{clock(s.start_s)}-{clock(s.end_s)}" for s in stretches[:3]]
    more = f" (and {len(stretches) - 3} more times)" if len(stretches) > 3 else ""
    return "during " + _join(shown) + more


def _convergence_sentence(mirroring: Mirroring) -> str | None:
    clauses = []
    for name, feature in mirroring.features.items():
        conv = feature.convergence
        if conv.direction not in ("converging", "diverging"):
            continue
        grew = "grew closer" if conv.direction == "converging" else "drifted apart"
        movers = [m for m in (movement_words(conv, r) for r in ROLES) if m]
        who = f" ({_join(movers)})" if movers else ""
        clauses.append(f"their {FEATURE_WORDS[name]} {grew}{who}")
    if not clauses:
        return None
    text = "Over the call " + _join(clauses[:3])
    return text + "."


def _caveat_sentence(report: Report) -> str | None:
    mirroring = report.mirroring
    if mirroring is None:
        return "Mirroring was not measured for this call."
    identical = any(w.code == "channels.identical" for w in report.warnings)
    if identical:
        return (
            "Both channels carry the same signal (fake stereo), so who adapted to whom "
            "cannot be measured."
        )
    speakers = (report.speakers.agent.talk_ratio, report.speakers.customer.talk_ratio)
    if any(w.code == "channel.silent" for w in report.warnings) or 0 in speakers:
        return "Mirroring needs both speakers, so who adapted to whom cannot be measured here."
    if mirroring.detectable_r is None:
        return (
            f"The call is too short to tell: with {mirroring.n_exchanges} exchanges between "
            "the speakers no mirroring statistic could be computed."
        )
    if low_power(report):
        found = any(f.follower is not None for f in mirroring.features.values())
        return (
            f"The call is {'short' if found else 'too short to tell'}: with "
            f"{mirroring.n_exchanges} exchanges only following stronger than "
            f"r = {mirroring.detectable_r:.2f} can show (0.5 is already a large effect), so "
            + (
                "features not named may still have been mirrored, more weakly."
                if found
                else "'not shown' does not mean it did not happen."
            )
        )
    return None


def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


def verbal_sentence(report: Report) -> str | None:
    """Echoes per speaker (and how many were echo questions) and lexical mirroring against
    its baseline, naming the recogniser's language (its words are often wrong)."""
    verbal = report.verbal
    if verbal is None:
        return None
    parts = []
    for role in ROLES:
        one = getattr(verbal.speakers, role)
        if one.partner_turns == 0:
            continue
        questions = f", {one.echo_questions} as questions" if one.echo_questions else ""
        parts.append(
            f"the {role} echoed the {_other(role)}'s last words {_times(one.echoes)} in "
            f"{one.partner_turns} answers{questions}"
        )
    lex = verbal.lexical
    if lex.mirrored:
        lexical = (
            f"answers reused the words just heard more than other turns' ({_p_text(lex.p)})"
            if lex.p is not None
            else ""
        )
    elif lex.difference is not None:
        lexical = "answers reused the words just heard no more than chance"
    else:
        lexical = f"lexical mirroring not measured ({lex.reason})"
    clauses = [*parts, lexical] if lexical else parts
    if not clauses:
        return None
    text = _join(clauses)
    return f"In words (recognised automatically, {verbal.recognizer.language}): {text}."


def summarize(report: Report) -> list[str]:
    """3-6 plain sentences: who talked how much; who adapted to whom in what, how strong
    the evidence; the scores when one is beyond chance; when their tone / tempo moved
    together or apart; who converged or diverged; and the caveat of a call too short to
    tell."""
    sentences = [_talk_sentence(report)]
    mirroring = report.mirroring
    caveat = _caveat_sentence(report)
    if mirroring is not None:
        sentences.append(_following_sentence(mirroring, short=low_power(report)))
        optional = [
            verbal_sentence(report),
            _score_sentence(mirroring),
            _convergence_sentence(mirroring),
            _timeline_sentence(mirroring),
        ]
        room = 6 - len(sentences) - (caveat is not None)
        sentences += [s for s in optional if s is not None][:room]
    elif (verbal := verbal_sentence(report)) is not None:
        sentences.append(verbal)
    if caveat is not None:
        sentences.append(caveat)
    if len(sentences) < 3:
        sentences.append(_turn_sentence(report))
    return sentences


def _turn_sentence(report: Report) -> str:
    agent, customer = report.speakers.agent, report.speakers.customer
    switches = report.conversation.switches_per_min
    rate = f" ({switches:.1f} floor changes a minute)" if switches is not None else ""
    return (
        f"The agent took {agent.turns} turns and the customer {customer.turns}{rate}; "
        f"the agent interrupted {agent.interruptions} times and the customer "
        f"{customer.interruptions}."
    )
