"""Tone and tempo mirroring statistics: proximity, convergence, synchrony, who follows whom.

Inputs are feature tables the pipeline computes from audio (:class:`SpeakerUnits` per
speaker, :class:`WindowSeries` for both speakers on one clock, :class:`ShamCall` for the
other calls of a batch); the entry point is :func:`analyze_mirroring`, which returns a
frozen :class:`MirroringResult` made of plain Python floats / ints / strings / ``None``
(``result.to_dict()`` gives the JSON shape of the report's ``mirroring`` section).

What each statistic is (formulas, units, references): ``docs/mirroring.md``. How the
numbers came to be what they are: ``CHANGELOG.md``. The modules, in the order
:func:`analyze_mirroring` uses them: ``inputs``, ``exchanges``, ``synchrony``,
``proximity``, ``convergence``, ``correction``, ``verdicts``, ``scores``, ``timeline``
(``stats``: shared primitives; ``results``: the result types).
"""

from dsp.mirroring.analyze import analyze_mirroring
from dsp.mirroring.correction import (
    CORRECTION,
    FEATURE_WEIGHTS,
    LARGE_EFFECT_R,
    TEST_WEIGHTS,
)
from dsp.mirroring.inputs import (
    FEATURE_ALIASES,
    FEATURES,
    PROSODY_FEATURES,
    TEMPO_FEATURES,
    TIMING_FEATURES,
    TONE_FEATURES,
    UNITS,
    ZSCORED,
    FloatArray,
    IntArray,
    ShamCall,
    SpeakerUnits,
    WindowSeries,
)
from dsp.mirroring.results import (
    Convergence,
    DirectionalSync,
    DirectionScore,
    FeatureMirroring,
    MirroringResult,
    Proximity,
    Scores,
    TimelinePoint,
    WindowedSync,
)
from dsp.mirroring.stats import benjamini_hochberg, bh_rank_one_threshold

__all__ = [
    "CORRECTION",
    "FEATURES",
    "FEATURE_ALIASES",
    "FEATURE_WEIGHTS",
    "LARGE_EFFECT_R",
    "PROSODY_FEATURES",
    "TEMPO_FEATURES",
    "TEST_WEIGHTS",
    "TIMING_FEATURES",
    "TONE_FEATURES",
    "UNITS",
    "ZSCORED",
    "Convergence",
    "DirectionalSync",
    "FeatureMirroring",
    "FloatArray",
    "IntArray",
    "MirroringResult",
    "Proximity",
    "DirectionScore",
    "Scores",
    "ShamCall",
    "SpeakerUnits",
    "TimelinePoint",
    "WindowSeries",
    "WindowedSync",
    "analyze_mirroring",
    "benjamini_hochberg",
    "bh_rank_one_threshold",
]
