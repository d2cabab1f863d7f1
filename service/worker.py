"""What runs inside the analysis worker processes (spawned, so only this module is imported).

Functions here return plain tuples of strings so nothing but text crosses the process
boundary; they never raise for bad input.
"""

from __future__ import annotations

import io
import logging
import math
import traceback
import wave

log = logging.getLogger("mirrorline.worker")

Outcome = tuple[str, str, str]
"""("ok", report_json, windows_csv) or ("error", code, message) or ("internal", msg, trace)."""


def analyze_file(
    path: str, config_json: str, name: str | None, max_duration_s: float | None
) -> Outcome:
    """Analyse one stored upload; input errors come back as ``("error", code, message)``."""
    try:
        from dsp.errors import InputError
        from models.params import AnalysisConfig
        from service.analysis import analyze_source, windows_csv

        config = AnalysisConfig.model_validate_json(config_json)
        try:
            report = analyze_source(path, config, name=name, max_duration_s=max_duration_s)
        except InputError as exc:
            return ("error", exc.code, exc.message)
        return ("ok", report.model_dump_json(), windows_csv(report))
    except Exception as exc:  # a bug: reported as 500 / job failed "internal"
        return ("internal", f"{exc.__class__.__name__}: {exc}", traceback.format_exc())


def _warm_up_wav(seconds: float = 3.0, rate_hz: int = 8000) -> bytes:
    """A small stereo WAV of alternating harmonic bursts (speech-like enough to run it all)."""
    n = int(seconds * rate_hz)
    frames = bytearray()
    for i in range(n):
        t = i / rate_hz
        phase = int(t / 0.5) % 2
        env = math.sin(math.pi * ((t % 0.5) / 0.5)) ** 2
        value = (
            0.3
            * env
            * sum(math.sin(2 * math.pi * k * (140 if phase else 210) * t) / k for k in (1, 2, 3))
        )
        left = int(8000 * value) if phase == 0 else 0
        right = int(8000 * value) if phase == 1 else 0
        frames += left.to_bytes(2, "little", signed=True) + right.to_bytes(2, "little", signed=True)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate_hz)
        out.writeframes(bytes(frames))
    return buffer.getvalue()


def warm_up() -> None:
    """Process-pool initializer: import the pipeline and run it once (JIT, caches).

    Never raises: a failing initializer would break the whole pool.
    """
    try:
        from models.params import AnalysisConfig
        from service.analysis import analyze_source

        analyze_source(
            _warm_up_wav(), AnalysisConfig.model_validate({"window_s": 1.0, "hop_s": 1.0})
        )
    except Exception as exc:
        log.warning("analysis warm-up failed: %s: %s", exc.__class__.__name__, exc)


def ping() -> int:
    """A no-op task: submitting a few makes the pool start (and warm) its processes."""
    import os
    import time

    time.sleep(0.2)  # hold this worker so the next ping starts (and warms) another
    return os.getpid()
