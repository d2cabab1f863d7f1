"""Synthetic two-party phone calls with known truth, for tests and benchmarks.

Each utterance is spoken by ``espeak-ng`` with a voice, a pitch (``-p``), an SSML pitch range
and a speed (``-s``) chosen from a per-voice calibration so that the *planted* median f0,
f0 variability and articulation rate come out close to what was asked for. The *truth* is
never the request: it is measured on the clean rendered utterance (``librosa.pyin`` for f0,
a 10 ms RMS envelope for speech segments) before anything is mixed in. Utterances are placed
on two channels (agent = 0, customer = 1) on one timeline, each channel's speech bleeds into
the other (attenuated, delayed, slightly filtered), line noise (band-limited hiss and a
little 50/60 Hz hum) is added, then the 300-3400 Hz telephone band and 8-bit mu-law
companding. :func:`plan_call` writes realistic turn lists with planted relations between the
speakers (independent, one follows the other on one feature, convergence, divergence,
strongly varying prosody).

Quick use::

    rng = np.random.default_rng(0)
    call = render_call(plan_call("follow", follower="customer", feature="pitch_level",
                                 duration_s=60, rng=rng), rng=rng)
    call.audio            # (2, n) float32 at call.sample_rate_hz
    call.utterances[0]    # UtteranceTruth: speaker, start_s, end_s, segments_s, f0, level...
    truth_windows(call, window_s=16, hop_s=8).pitch_st   # (2, W)

Rendered utterances (audio + pyin track) are cached on disk by their parameters, and so is
the per-voice calibration, in ``<tempdir>/mirrorline-synthcall`` unless ``cache_dir`` says
otherwise. Calibrations for the default voices measured with espeak-ng 1.51 are built in.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.signal as sps

from dsp.frames import HOP_S, frame_count, hop_samples, mask_to_segments

FloatArray = npt.NDArray[np.float64]
F32Array = npt.NDArray[np.float32]

ESPEAK_RATE_HZ = 22050
#: Speech-active RMS level of a clean utterance at gain 0 dB, in dBFS.
REF_LEVEL_DBFS = -26.0
#: Envelope threshold for truth speech segments, as a fraction of the utterance's peak RMS.
SEGMENT_THRESHOLD = 0.03
#: Hum level relative to ``noise_db``.
HUM_REL_DB = -6.0
#: Half width of the pyin search range around the calibrated median (semitones).
PYIN_HALF_SPAN_ST = 10.0
#: Re-aim (render once more) an utterance whose measured median f0 (st), f0 sd (st) or
#: articulation rate (syll/s) misses its target by more than these.
RETRY_PITCH_ST = 0.4
RETRY_SD_ST = 0.4
RETRY_RATE_PER_S = 0.5
#: Bump when rendering or truth measurement changes (invalidates the on-disk cache).
CACHE_VERSION = 3

FEMALE_VOICE = "en-us+f1"
MALE_VOICE = "en-us+m6"
DEFAULT_VOICES = (FEMALE_VOICE, MALE_VOICE)

BACKCHANNELS = ("yeah", "mm-hmm", "okay", "right", "uh-huh", "sure", "I see")

Feature = Literal[
    "pitch_level", "pitch_variability", "loudness", "speaking_rate", "articulation_rate"
]
FEATURES: tuple[str, ...] = (
    "pitch_level",
    "pitch_variability",
    "loudness",
    "speaking_rate",
    "articulation_rate",
)
KINDS = ("independent", "follow", "converge", "diverge", "varying")
ROLES = {"agent": 0, "customer": 1}


# --------------------------------------------------------------------------------------
# Specs and results
# --------------------------------------------------------------------------------------

FloatOrSeq = float | tuple[float, ...]


@dataclass(frozen=True)
class TurnSpec:
    """One planned turn (or backchannel) of one speaker.

    Prosody fields are either one value for every utterance of the turn or a tuple with one
    value per utterance.

    Attributes
    ----------
    speaker : int
        0 (agent, left channel) or 1 (customer, right channel).
    text : str or int or tuple
        The words; an ``int`` asks for that many syllables of generated words; a tuple gives
        several utterances (sentences), rendered separately and joined by ``pause_s``.
    pitch_hz : float or tuple or None
        Target median f0 of each utterance in Hz; None leaves the voice's own pitch.
    pitch_range_st : float or tuple or None
        Target f0 standard deviation within each utterance in semitones (inflection).
    rate_syl_per_s : float or tuple or None
        Target articulation rate (syllables per second of speech) of each utterance.
    gain_db : float or tuple
        Level of each utterance relative to :data:`REF_LEVEL_DBFS` (speech-active RMS).
    start_s : float or None
        Absolute start time; overrides ``gap_s`` / ``at_fraction``.
    gap_s : float
        Silence between the end of the previous (non-backchannel) turn and this one;
        negative values overlap it. Not used for backchannels.
    pause_s : float or tuple
        Silence between consecutive utterances of the turn (one fewer than utterances).
    backchannel : bool
        A short response inside the partner's previous turn; it is not a turn and does not
        move the turn clock.
    at_fraction : float
        Where a backchannel goes inside the partner's previous turn (0 = start, 1 = end);
        it snaps into the nearest pause between the partner's utterances if there is one.
    voice : str or None
        espeak-ng voice, e.g. ``"en-us+f1"``; None picks by pitch (female above 150 Hz).
    """

    speaker: int
    text: str | int | tuple[str | int, ...]
    pitch_hz: FloatOrSeq | None = None
    pitch_range_st: FloatOrSeq | None = None
    rate_syl_per_s: FloatOrSeq | None = None
    gain_db: FloatOrSeq = 0.0
    start_s: float | None = None
    gap_s: float = 0.3
    pause_s: FloatOrSeq = 0.35
    backchannel: bool = False
    at_fraction: float = 0.5
    voice: str | None = None

    @property
    def n_utterances(self) -> int:
        return len(self.text) if isinstance(self.text, tuple) else 1


@dataclass(frozen=True)
class UtteranceTruth:
    """Truth for one rendered utterance, measured on the clean signal before mixing.

    Times are seconds on the call's timeline, on the 10 ms clock of :mod:`dsp.frames`.
    ``segments_s`` is ``(k, 2)`` ``[start_s, end_s]``: frames whose RMS envelope (20 ms,
    of the utterance as its channel carries it: band-limited when ``telephone``) is above
    :data:`SEGMENT_THRESHOLD` of its peak, gaps up to 20 ms closed. ``f0_*`` come from
    ``librosa.pyin`` on the clean full-band utterance (voiced frames only; NaN when none is
    voiced). ``level_db`` is the planted speech-active RMS level in dBFS
    (``REF_LEVEL_DBFS + gain_db``), exact in the channel before bleed, noise and companding.
    ``articulation_rate_per_s`` is syllables per second of speech (sum of segment durations).
    """

    index: int
    turn_index: int
    speaker: int
    text: str
    backchannel: bool
    start_s: float
    end_s: float
    segments_s: FloatArray
    speech_s: float
    f0_median_hz: float
    f0_median_st: float
    f0_sd_st: float
    voiced_s: float
    level_db: float
    gain_db: float
    syllables: int
    articulation_rate_per_s: float
    voice: str
    espeak_pitch: int
    espeak_range_pct: int
    espeak_speed_wpm: int
    planned_pitch_hz: float
    planned_range_st: float
    planned_rate_syl_per_s: float


@dataclass(frozen=True)
class TurnTruth:
    """Truth for one turn (or backchannel): its utterances pooled.

    ``f0_*`` pool the voiced frames of all its utterances; ``level_db`` is the
    speech-duration-weighted mean of their levels; ``speaking_rate_per_s`` is syllables over
    the whole turn span (pauses included), ``articulation_rate_per_s`` over speech time.
    ``utterances`` holds indices into :attr:`SynthCall.utterances`.
    """

    index: int
    speaker: int
    backchannel: bool
    start_s: float
    end_s: float
    utterances: tuple[int, ...]
    f0_median_hz: float
    f0_median_st: float
    f0_sd_st: float
    level_db: float
    syllables: int
    speech_s: float
    speaking_rate_per_s: float
    articulation_rate_per_s: float


@dataclass(frozen=True)
class SynthCall:
    """A rendered call: audio plus truth.

    Attributes
    ----------
    audio : ndarray, shape (2, n), float32
        The final call (bleed, noise, telephone band, companding), channel 0 = agent.
    clean : ndarray, shape (2, n), float32
        Each speaker's own speech as placed in their channel (band-limited when
        ``telephone``, at the planted gain), before bleed, noise and companding.
    f0_hz : ndarray, shape (2, T), float64
        pyin f0 of each speaker's clean utterances on the 10 ms clock
        (``T = frame_count(n, sample_rate_hz)``); NaN where unvoiced or silent.
    """

    audio: F32Array
    clean: F32Array
    sample_rate_hz: int
    turns: tuple[TurnTruth, ...]
    utterances: tuple[UtteranceTruth, ...]
    f0_hz: FloatArray
    specs: tuple[TurnSpec, ...]
    telephone: bool
    mulaw: bool
    bleed_db: float
    bleed_delay_ms: float
    noise_db: float
    hum_hz: float

    @property
    def duration_s(self) -> float:
        return self.audio.shape[1] / self.sample_rate_hz

    @property
    def n_frames(self) -> int:
        return int(self.f0_hz.shape[1])


@dataclass(frozen=True)
class WindowTruth:
    """Per-speaker, per-window truth (all ``(2, W)`` except ``starts_s``).

    ``pitch_st``: median of the voiced clean-f0 frames in the window (st re 100 Hz; with 10 ms
    frames this is the duration-weighted median). ``level_db`` and ``rate_per_s``
    (articulation rate): utterance values weighted by each utterance's speech time inside
    the window. ``speech_s``: speech time inside the window. NaN where a speaker has no
    speech (or no voiced frame, for pitch) in the window.
    """

    starts_s: FloatArray
    window_s: float
    pitch_st: FloatArray
    pitch_sd_st: FloatArray
    level_db: FloatArray
    rate_per_s: FloatArray
    speech_s: FloatArray


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def hz_to_st(f_hz: Any) -> Any:
    """Semitones re 100 Hz."""
    return 12.0 * np.log2(np.asarray(f_hz, dtype=np.float64) / 100.0)


def st_to_hz(st: Any) -> Any:
    """Hz from semitones re 100 Hz."""
    return 100.0 * 2.0 ** (np.asarray(st, dtype=np.float64) / 12.0)


def espeak_available() -> bool:
    """True when ``espeak-ng`` is on PATH."""
    return shutil.which("espeak-ng") is not None


_ESPEAK_VERSION: str | None = None


def espeak_version() -> str:
    """The espeak-ng version string, e.g. ``"1.51"`` ("" when not installed)."""
    global _ESPEAK_VERSION
    if _ESPEAK_VERSION is None:
        if not espeak_available():
            return ""
        out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
        m = re.search(r"text-to-speech:\s*(\S+)", out)
        _ESPEAK_VERSION = m.group(1) if m else out.strip()[:40]
    return _ESPEAK_VERSION


def default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "mirrorline-synthcall"


_SYLLABLE_CACHE: dict[str, int] = {}
_FIXED_SYLLABLES = {"mm-hmm": 2, "uh-huh": 2, "mhm": 2, "hmm": 1, "mm": 1, "okay": 2, "ok": 2}


def count_syllables(text: str) -> int:
    """Syllables in ``text``: CMU dictionary via ``pronouncing``, vowel groups as fallback."""
    import pronouncing

    total = 0
    for raw in re.findall(r"[A-Za-z'\-]+", text):
        word = raw.lower().strip("'-")
        if not word:
            continue
        if word in _SYLLABLE_CACHE:
            total += _SYLLABLE_CACHE[word]
            continue
        if word in _FIXED_SYLLABLES:
            n = _FIXED_SYLLABLES[word]
        else:
            phones = pronouncing.phones_for_word(word)
            if phones:
                n = int(pronouncing.syllable_count(phones[0]))
            else:
                n = 0
                for part in word.split("-"):
                    n += max(1, len(re.findall(r"[aeiouy]+", part)))
        _SYLLABLE_CACHE[word] = n
        total += n
    return total


def _rms_envelope(y: npt.NDArray[Any], hop: int) -> FloatArray:
    """RMS over ``2 * hop`` samples centred on each frame (frame i at sample i * hop)."""
    n_frames = 1 + len(y) // hop
    padded = np.zeros(n_frames * hop + 2 * hop, dtype=np.float64)
    padded[hop : hop + len(y)] = y
    sq = padded**2
    frames = sq[: (n_frames + 1) * hop].reshape(n_frames + 1, hop).sum(axis=1)
    energy = frames[:-1] + frames[1:]
    return np.sqrt(energy / (2 * hop))


def _close_gaps(mask: npt.NDArray[np.bool_], max_gap: int) -> npt.NDArray[np.bool_]:
    out = mask.copy()
    idx = np.flatnonzero(mask)
    if idx.size < 2:
        return out
    gaps = np.diff(idx)
    for i in np.flatnonzero((gaps > 1) & (gaps <= max_gap + 1)):
        out[idx[i] : idx[i + 1]] = True
    return out


def speech_mask(
    y: npt.NDArray[Any], *, sample_rate_hz: int, threshold: float = SEGMENT_THRESHOLD
) -> npt.NDArray[np.bool_]:
    """Frames of a clean single-speaker signal above ``threshold`` x its peak RMS envelope.

    Gaps of up to 20 ms are closed (envelope jitter). Shape ``(frame_count(len(y)),)``.
    """
    env = _rms_envelope(np.asarray(y, dtype=np.float64), hop_samples(sample_rate_hz))
    peak = float(env.max()) if env.size else 0.0
    if peak <= 0.0:
        return np.zeros(env.shape, dtype=bool)
    return _close_gaps(env > threshold * peak, 2)


def _mulaw(x: F32Array) -> F32Array:
    """G.711 mu-law: encode to 8 bits and decode again (values are exactly what a mu-law WAV
    decodes to, as 16-bit PCM / 32768)."""
    pcm = np.clip(np.round(x.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int64)
    neg = pcm < 0
    mag = np.minimum(np.abs(pcm), 32635) + 0x84
    exponent = np.floor(np.log2(mag)).astype(np.int64) - 7
    mantissa = (mag >> (exponent + 3)) & 0x0F
    value = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return (np.where(neg, -value, value) / 32768.0).astype(np.float32)


def _telephone_sos(sample_rate_hz: int) -> npt.NDArray[np.float64]:
    hi = min(3400.0, 0.45 * sample_rate_hz)
    return np.asarray(
        sps.butter(4, [300.0, hi], btype="bandpass", fs=sample_rate_hz, output="sos"),
        dtype=np.float64,
    )


def _resample(y: npt.NDArray[Any], from_hz: int, to_hz: int) -> FloatArray:
    if from_hz == to_hz:
        return np.asarray(y, dtype=np.float64)
    g = math.gcd(from_hz, to_hz)
    return np.asarray(sps.resample_poly(y, to_hz // g, from_hz // g), dtype=np.float64)


# --------------------------------------------------------------------------------------
# espeak-ng rendering and pyin truth, cached
# --------------------------------------------------------------------------------------


def _espeak_wav(text: str, *, voice: str, pitch: int, range_pct: int, speed_wpm: int) -> FloatArray:
    """Render ``text`` with espeak-ng; returns mono float64 at :data:`ESPEAK_RATE_HZ`."""
    import soundfile as sf

    safe = text.replace("&", " and ").replace("<", " ").replace(">", " ")
    ssml = f'<speak><prosody range="{int(range_pct)}%">{safe}</prosody></speak>'
    args = [
        "espeak-ng",
        "-v",
        voice,
        "-p",
        str(int(pitch)),
        "-s",
        str(int(speed_wpm)),
        "-a",
        "100",
        "-z",
        "-m",
        "--stdout",
        ssml,
    ]
    proc = subprocess.run(args, capture_output=True, check=True)
    y, sr = sf.read(io.BytesIO(proc.stdout), dtype="float64")
    if int(sr) != ESPEAK_RATE_HZ:
        y = _resample(y, int(sr), ESPEAK_RATE_HZ)
    return np.asarray(y, dtype=np.float64).reshape(-1)


def _pyin(y: FloatArray, *, sample_rate_hz: int, fmin_hz: float, fmax_hz: float) -> FloatArray:
    """pyin f0 (Hz, NaN unvoiced) on the 10 ms clock: frame i centred on sample i * hop."""
    import librosa

    hop = hop_samples(sample_rate_hz)
    frame_length = 512 if sample_rate_hz <= 11025 else 1024
    n_frames = 1 + len(y) // hop
    if len(y) < frame_length:
        return np.full(n_frames, np.nan)
    f0, voiced, _ = librosa.pyin(
        y.astype(np.float64),
        fmin=float(fmin_hz),
        fmax=float(fmax_hz),
        sr=sample_rate_hz,
        frame_length=frame_length,
        hop_length=hop,
        center=True,
    )
    out = np.where(voiced, f0, np.nan)[:n_frames]
    if out.size < n_frames:
        out = np.concatenate([out, np.full(n_frames - out.size, np.nan)])
    return np.asarray(out, dtype=np.float64)


def _f0_bounds(voice: str) -> tuple[float, float]:
    if _is_female(voice):
        return 90.0, 450.0
    return 50.0, 260.0


def _is_female(voice: str) -> bool:
    v = voice.split("+")[-1].lower()
    return bool(re.fullmatch(r"f\d*", v)) or v in {"female", "grandma", "belinda", "alicia"}


@dataclass(frozen=True)
class _Clip:
    """A rendered utterance, trimmed to its speech, at the output rate."""

    audio: FloatArray  # starts one frame before the first active frame
    f0_hz: FloatArray  # per frame of ``audio``
    mask: npt.NDArray[np.bool_]  # per frame of ``audio``
    first_frame: int  # index (within audio frames) of the first active frame


def _render_clip(
    text: str,
    *,
    voice: str,
    pitch: int,
    range_pct: int,
    speed_wpm: int,
    sample_rate_hz: int,
    f0_range_hz: tuple[float, float],
    telephone: bool,
    cache_dir: Path | None,
) -> _Clip:
    fmin, fmax = (round(float(f), 1) for f in f0_range_hz)
    key_src = json.dumps(
        [
            CACHE_VERSION,
            espeak_version(),
            text,
            voice,
            pitch,
            range_pct,
            speed_wpm,
            sample_rate_hz,
            fmin,
            fmax,
            telephone,
        ]
    )
    key = hashlib.sha1(key_src.encode()).hexdigest()[:20]
    path = None
    if cache_dir is not None:
        path = cache_dir / "clips" / f"{key}.npz"
        if path.exists():
            try:
                with np.load(path) as z:
                    return _Clip(
                        audio=z["audio"].astype(np.float64),
                        f0_hz=z["f0_hz"].astype(np.float64),
                        mask=z["mask"].astype(bool),
                        first_frame=int(z["first_frame"]),
                    )
            except (OSError, KeyError, ValueError):
                pass
    raw = _espeak_wav(text, voice=voice, pitch=pitch, range_pct=range_pct, speed_wpm=speed_wpm)
    y = _resample(raw, ESPEAK_RATE_HZ, sample_rate_hz)
    hop = hop_samples(sample_rate_hz)
    # speech segments from what the channel will carry (band-limited when telephone)
    y_env = sps.sosfiltfilt(_telephone_sos(sample_rate_hz), y) if telephone else y
    mask = speech_mask(y_env, sample_rate_hz=sample_rate_hz)
    active = np.flatnonzero(mask)
    if active.size == 0:
        clip = _Clip(np.zeros(hop), np.full(2, np.nan), np.zeros(2, bool), 1)
    else:
        j0 = max(0, int(active[0]) - 1)
        j1 = int(active[-1]) + 2
        seg = y[j0 * hop : j1 * hop]
        f0_seg = _pyin(seg, sample_rate_hz=sample_rate_hz, fmin_hz=fmin, fmax_hz=fmax)
        n_seg_frames = 1 + len(seg) // hop
        m_seg = mask[j0 : j0 + n_seg_frames]
        if f0_seg.size < n_seg_frames:
            f0_seg = np.concatenate([f0_seg, np.full(n_seg_frames - f0_seg.size, np.nan)])
            m_seg = np.concatenate([m_seg, np.zeros(n_seg_frames - m_seg.size, bool)])
        f0_seg = np.where(m_seg, f0_seg, np.nan)
        clip = _Clip(seg, f0_seg, m_seg, int(active[0]) - j0)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(
            tmp,
            audio=clip.audio.astype(np.float32),
            f0_hz=clip.f0_hz.astype(np.float32),
            mask=clip.mask,
            first_frame=np.int64(clip.first_frame),
        )
        os.replace(tmp, path)
    return _Clip(
        clip.audio.astype(np.float32).astype(np.float64),
        clip.f0_hz.astype(np.float32).astype(np.float64),
        clip.mask,
        clip.first_frame,
    )


# --------------------------------------------------------------------------------------
# Calibration: espeak (pitch, range %, speed) -> (median f0, f0 sd, articulation rate)
# --------------------------------------------------------------------------------------

_CAL_TEXTS = (
    "We checked the payment on Monday and the refund should arrive in your account soon.",
    "Could you tell me the number on the back of the card please?",
    "I think the new contract will start next month for the whole team.",
)
_CAL_PITCHES = (0, 11, 22, 33, 44, 55, 66, 77, 88, 99)
_CAL_RANGES = (0, 25, 50, 100, 150, 200)
_CAL_SPEEDS = (80, 110, 140, 175, 220, 280, 360, 450)


@dataclass(frozen=True)
class VoiceCalibration:
    """Measured espeak-ng response of one voice (pyin on 8 kHz renders of fixed sentences).

    ``median_st`` and ``sd_st`` are ``(len(pitches), len(ranges))``; ``rate_per_s`` is the
    articulation rate at each of ``speeds_wpm`` (pitch 50, range 100 %).
    """

    voice: str
    espeak: str
    pitches: tuple[int, ...]
    ranges_pct: tuple[int, ...]
    median_st: tuple[tuple[float, ...], ...]
    sd_st: tuple[tuple[float, ...], ...]
    speeds_wpm: tuple[int, ...]
    rate_per_s: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "voice": self.voice,
            "espeak": self.espeak,
            "pitches": list(self.pitches),
            "ranges_pct": list(self.ranges_pct),
            "median_st": [list(r) for r in self.median_st],
            "sd_st": [list(r) for r in self.sd_st],
            "speeds_wpm": list(self.speeds_wpm),
            "rate_per_s": list(self.rate_per_s),
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> VoiceCalibration:
        return VoiceCalibration(
            voice=str(d["voice"]),
            espeak=str(d["espeak"]),
            pitches=tuple(int(x) for x in d["pitches"]),
            ranges_pct=tuple(int(x) for x in d["ranges_pct"]),
            median_st=tuple(tuple(float(x) for x in r) for r in d["median_st"]),
            sd_st=tuple(tuple(float(x) for x in r) for r in d["sd_st"]),
            speeds_wpm=tuple(int(x) for x in d["speeds_wpm"]),
            rate_per_s=tuple(float(x) for x in d["rate_per_s"]),
        )

    def pitch_span_hz(self) -> tuple[float, float]:
        """Lowest and highest median f0 this voice reaches (Hz)."""
        m = np.asarray(self.median_st)
        return float(st_to_hz(np.nanmin(m))), float(st_to_hz(np.nanmax(m)))

    def choose_pitch(self, pitch_hz: float, range_st: float | None) -> tuple[int, int]:
        """espeak ``(-p, range %)`` whose calibrated median and sd are closest to the target.

        The median counts fully; the sd (when given) with weight 0.5 per semitone.
        """
        med = np.asarray(self.median_st)
        sd = np.asarray(self.sd_st)
        p_fine = np.arange(0, 100)
        r_fine = np.arange(0, 201, 5)
        med_f = _interp2(med, self.pitches, self.ranges_pct, p_fine, r_fine)
        sd_f = _interp2(sd, self.pitches, self.ranges_pct, p_fine, r_fine)
        cost = (med_f - float(hz_to_st(pitch_hz))) ** 2
        if range_st is not None and np.isfinite(range_st):
            cost = cost + 0.25 * (sd_f - float(range_st)) ** 2
        else:
            cost = cost + 1e-3 * (r_fine[None, :] - 100.0) ** 2
        i, j = np.unravel_index(int(np.nanargmin(cost)), cost.shape)
        return int(p_fine[i]), int(r_fine[j])

    def predict(self, pitch: int, range_pct: int) -> tuple[float, float]:
        """Calibrated (median f0 st, f0 sd st) at espeak ``-p pitch`` and ``range_pct`` %."""
        p, r = np.asarray([float(pitch)]), np.asarray([float(range_pct)])
        med = _interp2(np.asarray(self.median_st), self.pitches, self.ranges_pct, p, r)
        sd = _interp2(np.asarray(self.sd_st), self.pitches, self.ranges_pct, p, r)
        return float(med[0, 0]), float(sd[0, 0])

    def choose_speed(self, rate_syl_per_s: float) -> int:
        """espeak ``-s`` (wpm) for a target articulation rate (syllables per second)."""
        rates = np.asarray(self.rate_per_s)
        speeds = np.asarray(self.speeds_wpm, dtype=np.float64)
        order = np.argsort(rates)
        s = float(np.interp(rate_syl_per_s, rates[order], speeds[order]))
        return int(np.clip(round(s), 80, 450))


def _interp2(
    table: FloatArray,
    xs: Sequence[int],
    ys: Sequence[int],
    xf: npt.NDArray[Any],
    yf: npt.NDArray[Any],
) -> FloatArray:
    """Bilinear interpolation of ``table[len(xs), len(ys)]`` onto the grid ``xf x yf``."""
    rows = np.stack([np.interp(yf, ys, table[i]) for i in range(len(xs))])  # (len(xs), len(yf))
    return np.stack([np.interp(xf, xs, rows[:, j]) for j in range(len(yf))], axis=1)


def _measure(y: FloatArray, voice: str) -> tuple[float, float, float]:
    """(median f0 st, f0 sd st, speech seconds) of a clean 8 kHz render."""
    fmin, fmax = _f0_bounds(voice)
    f0 = _pyin(y, sample_rate_hz=8000, fmin_hz=fmin, fmax_hz=fmax)
    mask = speech_mask(y, sample_rate_hz=8000)
    st = hz_to_st(f0[np.isfinite(f0) & mask[: f0.size]])
    if st.size == 0:
        return math.nan, math.nan, float(mask.sum() * HOP_S)
    return float(np.median(st)), float(np.std(st)), float(mask.sum() * HOP_S)


def calibrate_voice(voice: str) -> VoiceCalibration:
    """Measure how espeak-ng's ``-p``, SSML range and ``-s`` map to f0 and rate for ``voice``.

    About 90 renders plus pyin: 20-40 s on one core. Use :func:`get_calibration`, which
    caches the result.
    """
    median = np.zeros((len(_CAL_PITCHES), len(_CAL_RANGES)))
    sd = np.zeros_like(median)
    for i, p in enumerate(_CAL_PITCHES):
        for j, r in enumerate(_CAL_RANGES):
            meds, sds = [], []
            for text in _CAL_TEXTS[:2]:
                raw = _espeak_wav(text, voice=voice, pitch=p, range_pct=r, speed_wpm=160)
                m, s, _ = _measure(_resample(raw, ESPEAK_RATE_HZ, 8000), voice)
                meds.append(m)
                sds.append(s)
            median[i, j] = float(np.nanmean(meds))
            sd[i, j] = float(np.nanmean(sds))
    rates = []
    syl = sum(count_syllables(t) for t in _CAL_TEXTS)
    for s in _CAL_SPEEDS:
        speech = 0.0
        for text in _CAL_TEXTS:
            raw = _espeak_wav(text, voice=voice, pitch=50, range_pct=100, speed_wpm=s)
            y = _resample(raw, ESPEAK_RATE_HZ, 8000)
            speech += float(speech_mask(y, sample_rate_hz=8000).sum() * HOP_S)
        rates.append(syl / speech)
    return VoiceCalibration(
        voice=voice,
        espeak=espeak_version(),
        pitches=_CAL_PITCHES,
        ranges_pct=_CAL_RANGES,
        median_st=tuple(tuple(round(float(x), 3) for x in row) for row in median),
        sd_st=tuple(tuple(round(float(x), 3) for x in row) for row in sd),
        speeds_wpm=_CAL_SPEEDS,
        rate_per_s=tuple(round(float(x), 3) for x in rates),
    )


# Measured here with espeak-ng 1.51 (python -c "from tests.synthcall import *;
# print(calibrate_voice('en-us+f1').to_dict())"); used when the installed version matches.
_BUILTIN_CALIBRATIONS: dict[str, dict[str, Any]] = {
    "en-us+f1": {
        "voice": "en-us+f1",
        "espeak": "1.51",
        "pitches": [0, 11, 22, 33, 44, 55, 66, 77, 88, 99],
        "ranges_pct": [0, 25, 50, 100, 150, 200],
        "median_st": [
            [-0.974, -0.224, 0.626, 2.126, 3.776, 4.976],
            [0.926, 1.676, 2.426, 3.826, 5.101, 6.251],
            [2.826, 3.526, 4.226, 5.376, 6.526, 7.676],
            [4.826, 5.426, 6.026, 7.076, 8.126, 9.126],
            [6.926, 7.476, 8.026, 8.976, 9.876, 10.776],
            [9.126, 9.526, 10.026, 10.876, 11.751, 12.476],
            [11.326, 11.776, 12.176, 12.926, 13.701, 14.326],
            [13.576, 13.926, 14.326, 14.976, 15.676, 16.326],
            [15.876, 16.251, 16.576, 17.126, 17.726, 18.326],
            [18.176, 18.526, 18.776, 19.376, 19.876, 20.326],
        ],
        "sd_st": [
            [0.474, 0.647, 1.064, 1.727, 2.111, 2.582],
            [0.435, 0.568, 0.996, 1.751, 2.314, 2.534],
            [0.396, 0.549, 0.87, 1.604, 2.251, 2.677],
            [0.343, 0.472, 0.806, 1.449, 2.061, 2.541],
            [0.291, 0.447, 0.725, 1.29, 1.856, 2.355],
            [0.263, 0.381, 0.646, 1.161, 1.663, 2.11],
            [0.26, 0.395, 0.561, 1.023, 1.478, 1.882],
            [0.196, 0.301, 0.503, 0.918, 1.312, 1.697],
            [0.166, 0.263, 0.442, 0.812, 1.171, 1.489],
            [0.136, 0.229, 0.393, 0.724, 1.038, 1.326],
        ],
        "speeds_wpm": [80, 110, 140, 175, 220, 280, 360, 450],
        "rate_per_s": [2.52, 3.252, 4.085, 5.042, 6.162, 7.396, 9.231, 11.189],
    },
    "en-us+m6": {
        "voice": "en-us+m6",
        "espeak": "1.51",
        "pitches": [0, 11, 22, 33, 44, 55, 66, 77, 88, 99],
        "ranges_pct": [0, 25, 50, 100, 150, 200],
        "median_st": [
            [-10.9, -10.15, -9.2, -7.575, -6.2, -4.75],
            [-9.0, -8.3, -7.5, -6.1, -4.8, -3.55],
            [-7.1, -6.5, -5.75, -4.5, -3.3, -2.25],
            [-5.15, -4.5, -3.95, -2.775, -1.725, -0.65],
            [-3.0, -2.5, -1.9, -0.9, 0.025, 0.95],
            [-0.9, -0.45, 0.0, 0.95, 1.8, 2.625],
            [1.3, 1.75, 2.2, 3.0, 3.75, 4.45],
            [3.6, 3.9, 4.3, 5.0, 5.75, 6.35],
            [5.9, 6.2, 6.5, 7.2, 7.8, 8.35],
            [8.2, 8.5, 8.8, 9.3, 9.9, 10.35],
        ],
        "sd_st": [
            [0.228, 0.548, 0.993, 1.596, 2.108, 2.428],
            [0.253, 0.487, 0.952, 1.753, 2.203, 2.677],
            [0.177, 0.454, 0.876, 1.627, 2.122, 2.577],
            [0.155, 0.409, 0.773, 1.478, 2.093, 2.491],
            [0.135, 0.364, 0.701, 1.309, 1.886, 2.395],
            [0.135, 0.324, 0.604, 1.162, 1.666, 2.147],
            [0.159, 0.288, 0.545, 1.045, 1.496, 1.924],
            [0.093, 0.261, 0.488, 0.922, 1.334, 1.714],
            [0.092, 0.231, 0.431, 0.817, 1.175, 1.533],
            [0.079, 0.194, 0.378, 0.713, 1.053, 1.35],
        ],
        "speeds_wpm": [80, 110, 140, 175, 220, 280, 360, 450],
        "rate_per_s": [2.655, 3.397, 4.259, 5.156, 6.299, 7.5, 9.213, 11.374],
    },
}

_CAL_MEMO: dict[str, VoiceCalibration] = {}


def get_calibration(voice: str, *, cache_dir: Path | None = None) -> VoiceCalibration:
    """The calibration of ``voice`` for the installed espeak-ng: built in, on disk, or new."""
    version = espeak_version()
    memo_key = f"{voice}|{version}"
    if memo_key in _CAL_MEMO:
        return _CAL_MEMO[memo_key]
    builtin = _BUILTIN_CALIBRATIONS.get(voice)
    if builtin is not None and builtin["espeak"] == version:
        cal = VoiceCalibration.from_dict(builtin)
        _CAL_MEMO[memo_key] = cal
        return cal
    cdir = cache_dir if cache_dir is not None else default_cache_dir()
    safe_voice = re.sub(r"[^A-Za-z0-9_.+-]", "_", voice)
    path = cdir / f"calibration-v{CACHE_VERSION}-{safe_voice}-{version}.json"
    if path.exists():
        try:
            cal = VoiceCalibration.from_dict(json.loads(path.read_text()))
            _CAL_MEMO[memo_key] = cal
            return cal
        except (OSError, KeyError, ValueError):
            pass
    cal = calibrate_voice(voice)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(cal.to_dict()))
    os.replace(tmp, path)
    _CAL_MEMO[memo_key] = cal
    return cal


# --------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------

# fmt: off
_OPENERS = ("so", "well", "okay", "actually", "and", "but", "now", "look")
_SUBJECTS = (
    "I", "we", "you", "they", "my manager", "the company", "your account", "the system",
    "our team", "she", "he", "the bank", "my wife", "the technician", "the new plan",
)
_VERBS = (
    "checked", "updated", "sent", "need", "want", "fixed", "found", "moved", "changed",
    "received", "paid", "cancelled", "ordered", "called about", "looked at", "asked for",
    "will send", "can change", "should get", "never got", "already paid",
)
_BASE_VERBS = (
    "check", "update", "send", "fix", "change", "cancel", "confirm", "move", "explain",
    "find", "reset", "close", "open", "repeat", "verify",
)
_OBJECTS = (
    "the bill", "a new card", "the payment", "your order", "the address", "the last invoice",
    "an email", "the details", "the refund", "my password", "the contract", "the number",
    "the service", "the appointment", "the delivery", "the balance", "a letter", "the form",
    "the account", "the phone", "the internet connection", "the price", "the discount",
)
_TAILS = (
    "today", "last week", "right now", "on Monday", "this morning", "for you", "again",
    "by tomorrow", "in the system", "as soon as possible", "on the website", "yesterday",
    "before the weekend", "every month", "at the moment", "over the phone",
)
_LINKS = ("because", "and then", "but", "so", "when", "after")
# fmt: on


def make_sentence(rng: np.random.Generator, *, question: bool | None = None) -> str:
    """A plausible call-centre sentence of about 3-20 words from a fixed vocabulary."""
    if question is None:
        question = bool(rng.random() < 0.2)
    if question:
        aux = str(rng.choice(["could you", "can you", "did you", "do you want to", "should I"]))
        words = [aux, str(rng.choice(_BASE_VERBS)), str(rng.choice(_OBJECTS))]
        if rng.random() < 0.6:
            words.append(str(rng.choice(_TAILS)))
        text = " ".join(words)
        return text[0].upper() + text[1:] + "?"
    parts: list[str] = []
    if rng.random() < 0.35:
        parts.append(str(rng.choice(_OPENERS)))
    parts += [str(rng.choice(_SUBJECTS)), str(rng.choice(_VERBS)), str(rng.choice(_OBJECTS))]
    if rng.random() < 0.6:
        parts.append(str(rng.choice(_TAILS)))
    if rng.random() < 0.35:
        parts += [
            str(rng.choice(_LINKS)),
            str(rng.choice(_SUBJECTS)),
            str(rng.choice(_VERBS)),
            str(rng.choice(_OBJECTS)),
        ]
    text = " ".join(parts)
    return text[0].upper() + text[1:] + "."


def words_for_syllables(n_syllables: int, rng: np.random.Generator) -> str:
    """A sentence of about ``n_syllables`` syllables (never fewer, at most one word more)."""
    pool = [w for phrase in _SUBJECTS + _OBJECTS + _TAILS for w in phrase.split()]
    words: list[str] = []
    total = 0
    while total < max(1, int(n_syllables)):
        w = str(rng.choice(pool))
        words.append(w)
        total += count_syllables(w)
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


# --------------------------------------------------------------------------------------
# Rendering a call
# --------------------------------------------------------------------------------------


def _per_utt(value: Any, n: int, name: str) -> list[Any]:
    if isinstance(value, tuple):
        if len(value) != n:
            raise ValueError(f"{name} has {len(value)} values for {n} utterances")
        return list(value)
    return [value] * n


@dataclass
class _Placed:
    spec_index: int
    speaker: int
    text: str
    backchannel: bool
    clip: _Clip
    start_frame: int  # first active frame on the call clock
    voice: str
    pitch: int
    range_pct: int
    speed: int
    gain_db: float
    planned: tuple[float, float, float]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_active_frames(self) -> int:
        act = np.flatnonzero(self.clip.mask)
        return int(act[-1] - act[0] + 1) if act.size else 0

    @property
    def end_frame(self) -> int:
        return self.start_frame + self.n_active_frames


def _pyin_range(
    cal: VoiceCalibration, pitch: int, range_pct: int, voice: str
) -> tuple[float, float]:
    """pyin search range: the calibrated median +- :data:`PYIN_HALF_SPAN_ST`, within the voice's."""
    med_st, _ = cal.predict(pitch, range_pct)
    lo, hi = _f0_bounds(voice)
    centre = float(st_to_hz(med_st))
    k = 2.0 ** (PYIN_HALF_SPAN_ST / 12.0)
    return max(lo, min(centre / k, hi / 2.0)), min(hi, max(centre * k, lo * 2.0))


def _voice_for(spec: TurnSpec, pitch_hz: float | None) -> str:
    if spec.voice is not None:
        return spec.voice
    if pitch_hz is not None and np.isfinite(pitch_hz):
        return FEMALE_VOICE if pitch_hz >= 150.0 else MALE_VOICE
    return FEMALE_VOICE if spec.speaker == 0 else MALE_VOICE


def render_call(
    turns: Sequence[TurnSpec],
    *,
    sample_rate_hz: int = 8000,
    telephone: bool = True,
    mulaw: bool = True,
    bleed_db: float = -25.0,
    bleed_delay_ms: float = 5.0,
    noise_db: float = -55.0,
    rng: np.random.Generator,
    cache_dir: str | os.PathLike[str] | None = "default",
    tail_s: float = 0.5,
    workers: int = 1,
    correction_steps: int = 1,
    tolerance: float = 1.0,
) -> SynthCall:
    """Render ``turns`` into a stereo call and measure its truth.

    Parameters
    ----------
    turns : sequence of TurnSpec
        In time order of their turns; backchannels follow the partner turn they sit in.
    sample_rate_hz : int
        Output rate (8000-22050 Hz); espeak's 22.05 kHz is resampled.
    telephone : bool
        Band-limit speech and hiss to 300-3400 Hz (4th-order Butterworth, zero phase).
    mulaw : bool
        Pass the final audio through 8-bit mu-law companding.
    bleed_db : float
        Level of each channel's speech leaking into the other, dB re its own RMS
        (``-inf`` for none).
    bleed_delay_ms : float
        Delay of the leak.
    noise_db : float
        RMS of the (band-limited) hiss in dBFS; hum is ``HUM_REL_DB`` below it.
    rng : numpy.random.Generator
        Drives generated text (``int`` texts), noise and hum.
    cache_dir : path, None or "default"
        Where rendered utterances and calibrations are cached; None disables the clip cache.
    tail_s : float
        Silence after the last utterance.
    workers : int
        Processes rendering uncached utterances (espeak + pyin) in parallel; 1 = in-process.
    correction_steps : int
        Re-renders at most this often an utterance whose measured median f0, f0 sd or
        articulation rate misses its plan by more than ``tolerance`` times ``RETRY_*``, each
        time aiming the calibration the other way by the last miss; the closest render is
        kept. 0 renders once. Sentences differ from the calibration sentences, so one render
        misses its articulation rate by ~7 % (sd), about the spread a planted relation lives
        in: ``correction_steps=4, tolerance=0.25`` renders what was planted more faithfully
        (``python bench/synthcall_fidelity.py`` measures both).
    tolerance : float
        Scales the ``RETRY_*`` thresholds (1.0: 0.4 st, 0.4 st, 0.5 syllables/s).

    Returns
    -------
    SynthCall
    """
    if not 8000 <= sample_rate_hz <= ESPEAK_RATE_HZ:
        raise ValueError(f"sample_rate_hz must be 8000-22050, got {sample_rate_hz}")
    if not turns:
        raise ValueError("turns is empty; give at least one TurnSpec")
    if correction_steps < 0 or not tolerance > 0:
        raise ValueError(
            f"correction_steps must be >= 0 and tolerance > 0, got {correction_steps}, {tolerance}"
        )
    if not espeak_available():
        raise RuntimeError("espeak-ng is not on PATH (apt-get install espeak-ng)")
    cdir: Path | None
    if cache_dir is None:
        cdir = None
    elif isinstance(cache_dir, str) and cache_dir == "default":
        cdir = default_cache_dir()
    else:
        cdir = Path(cache_dir)
    cal_dir = cdir if cdir is not None else default_cache_dir()
    sr = int(sample_rate_hz)
    hop = hop_samples(sr)

    # pass 1: what to render
    jobs: list[dict[str, Any]] = []
    utt_info: list[tuple[int, str, float, tuple[float, float, float]]] = []
    spec_members: list[list[int]] = []
    spec_pauses: list[list[float]] = []
    for si, spec in enumerate(turns):
        if spec.speaker not in (0, 1):
            raise ValueError(f"turn {si}: speaker must be 0 or 1, got {spec.speaker}")
        n = spec.n_utterances
        texts_in = list(spec.text) if isinstance(spec.text, tuple) else [spec.text]
        texts = [words_for_syllables(t, rng) if isinstance(t, int) else str(t) for t in texts_in]
        pitches = _per_utt(spec.pitch_hz, n, "pitch_hz")
        ranges = _per_utt(spec.pitch_range_st, n, "pitch_range_st")
        rates = _per_utt(spec.rate_syl_per_s, n, "rate_syl_per_s")
        gains = _per_utt(spec.gain_db, n, "gain_db")
        spec_pauses.append([float(x) for x in _per_utt(spec.pause_s, max(n - 1, 1), "pause_s")])
        members: list[int] = []
        for u in range(n):
            voice = _voice_for(spec, pitches[u])
            cal = get_calibration(voice, cache_dir=cal_dir)
            if pitches[u] is not None:
                p, r = cal.choose_pitch(float(pitches[u]), ranges[u])
            elif ranges[u] is not None:
                p, r = cal.choose_pitch(float(st_to_hz(cal.predict(50, 100)[0])), ranges[u])
            else:
                p, r = 50, 100
            speed = cal.choose_speed(float(rates[u])) if rates[u] is not None else 160
            jobs.append(
                {
                    "text": texts[u],
                    "voice": voice,
                    "pitch": p,
                    "range_pct": r,
                    "speed_wpm": speed,
                    "sample_rate_hz": sr,
                    "f0_range_hz": _pyin_range(cal, p, r, voice),
                    "telephone": telephone,
                    "cache_dir": cdir,
                }
            )
            planned = (
                float(pitches[u]) if pitches[u] is not None else math.nan,
                float(ranges[u]) if ranges[u] is not None else math.nan,
                float(rates[u]) if rates[u] is not None else math.nan,
            )
            utt_info.append((si, texts[u], float(gains[u]), planned))
            members.append(len(jobs) - 1)
        spec_members.append(members)

    # pass 2: render (cached; optionally in worker processes)
    clips = _render_all(jobs, workers=workers)
    # correction steps: where the measured median f0, f0 sd or articulation rate missed its
    # target by more than the tolerance (sentences differ from the calibration sentences),
    # aim the calibration that much the other way, render again, and keep the closest render
    for k, (job, clip) in enumerate(zip(list(jobs), list(clips), strict=True)):
        text, planned = utt_info[k][1], utt_info[k][3]
        jobs[k], clips[k] = _corrected(
            job, clip, text, planned, steps=correction_steps, tolerance=tolerance, cal_dir=cal_dir
        )
    placed = [
        _Placed(
            si,
            turns[si].speaker,
            text,
            turns[si].backchannel,
            clip,
            0,
            job["voice"],
            job["pitch"],
            job["range_pct"],
            job["speed_wpm"],
            gain,
            planned,
        )
        for (si, text, gain, planned), clip, job in zip(utt_info, clips, jobs, strict=True)
    ]

    # pass 3: timing (frames on the call clock)
    turn_members: list[list[int]] = []
    last_main: int | None = None  # spec index of the previous non-backchannel turn
    own_end = [0, 0]  # last end frame of each speaker
    for si, spec in enumerate(turns):
        members = spec_members[si]
        pauses = spec_pauses[si]
        first = placed[members[0]]
        if spec.start_s is not None:
            start = int(round(spec.start_s / HOP_S))
        elif spec.backchannel and last_main is not None:
            start = _backchannel_start(placed, turn_members[last_main], spec.at_fraction)
        elif last_main is not None:
            prev = [placed[k] for k in turn_members[last_main]]
            p_start, p_end = prev[0].start_frame, prev[-1].end_frame
            start = max(p_start + 20, p_end + int(round(spec.gap_s / HOP_S)))
        else:
            start = int(round(max(spec.gap_s, 0.0) / HOP_S))
        start = max(start, own_end[spec.speaker] + 10 if own_end[spec.speaker] else 0)
        start = max(start, first.clip.first_frame)
        for u, k in enumerate(members):
            placed[k].start_frame = start
            start = placed[k].end_frame + int(round(float(pauses[min(u, len(pauses) - 1)]) / HOP_S))
        own_end[spec.speaker] = placed[members[-1]].end_frame
        turn_members.append(members)
        if not spec.backchannel:
            last_main = si

    # --- place clean speech ---
    end_frame = max(pl.start_frame - pl.clip.first_frame + len(pl.clip.mask) for pl in placed)
    n_samples = (end_frame + int(round(tail_s / HOP_S))) * hop + hop
    n_frames = frame_count(n_samples, sr)
    clean = np.zeros((2, n_samples), dtype=np.float64)
    f0_track = np.full((2, n_frames), np.nan)
    sos = _telephone_sos(sr) if telephone else None
    pad_frames = 5
    for pl in placed:
        clip = pl.clip
        y = np.concatenate([np.zeros(pad_frames * hop), clip.audio, np.zeros(pad_frames * hop)])
        if sos is not None:
            y = sps.sosfiltfilt(sos, y)
        # speech-active RMS over the samples of active frames
        act = np.repeat(np.concatenate([np.zeros(pad_frames, bool), clip.mask]), hop)
        act = np.roll(act, -(hop // 2))[: len(y)]
        if act.size < len(y):
            act = np.concatenate([act, np.zeros(len(y) - act.size, bool)])
        rms = float(np.sqrt(np.mean(y[act] ** 2))) if act.any() else 0.0
        if rms > 0:
            y = y * (10.0 ** ((REF_LEVEL_DBFS + pl.gain_db) / 20.0) / rms)
        clip_frame0 = pl.start_frame - clip.first_frame  # frame of clip.audio[0]
        s0 = (clip_frame0 - pad_frames) * hop
        lo = max(0, s0)
        hi = min(n_samples, s0 + len(y))
        clean[pl.speaker, lo:hi] += y[lo - s0 : hi - s0]
        f_hi = min(n_frames, clip_frame0 + len(clip.f0_hz))
        seg_f0 = clip.f0_hz[: f_hi - clip_frame0]
        cur = f0_track[pl.speaker, clip_frame0:f_hi]
        f0_track[pl.speaker, clip_frame0:f_hi] = np.where(np.isfinite(seg_f0), seg_f0, cur)

    # --- bleed, noise, hum, companding ---
    mix = clean.copy()
    if bleed_db is not None and np.isfinite(bleed_db):
        delay = int(round(bleed_delay_ms * sr / 1000.0))
        b_lp, a_lp = sps.butter(1, min(2500.0, 0.45 * sr), btype="lowpass", fs=sr)
        b_hp, a_hp = sps.butter(1, 150.0, btype="highpass", fs=sr)
        for c in (0, 1):
            src = clean[1 - c]
            src_rms = float(np.sqrt(np.mean(src**2)))
            if src_rms == 0.0:
                continue
            leak = sps.lfilter(b_hp, a_hp, sps.lfilter(b_lp, a_lp, src))
            leak = np.concatenate([np.zeros(delay), leak[: n_samples - delay]])
            leak_rms = float(np.sqrt(np.mean(leak**2)))
            if leak_rms > 0:
                mix[c] += leak * (src_rms / leak_rms) * 10.0 ** (bleed_db / 20.0)
    hum_hz = float(rng.choice([50.0, 60.0]))
    if noise_db is not None and np.isfinite(noise_db):
        hiss = rng.standard_normal((2, n_samples))
        if sos is not None:
            hiss = sps.sosfilt(sos, hiss, axis=1)
        hiss *= 10.0 ** (noise_db / 20.0) / np.sqrt(np.mean(hiss**2, axis=1, keepdims=True))
        t = np.arange(n_samples) / sr
        hum = np.zeros((2, n_samples))
        for c in (0, 1):
            for k, amp in ((1, 1.0), (3, 0.5), (5, 0.25)):
                hum[c] += amp * np.sin(2 * np.pi * k * hum_hz * t + rng.uniform(0, 2 * np.pi))
        hum *= 10.0 ** ((noise_db + HUM_REL_DB) / 20.0) / np.sqrt(
            np.mean(hum**2, axis=1, keepdims=True)
        )
        mix += hiss + hum
    audio = mix.astype(np.float32)
    audio = _mulaw(audio) if mulaw else np.clip(audio, -1.0, 1.0).astype(np.float32)

    # --- truth ---
    utts: list[UtteranceTruth] = []
    for i, pl in enumerate(placed):
        clip = pl.clip
        clip_frame0 = pl.start_frame - clip.first_frame
        segs = mask_to_segments(clip.mask) + clip_frame0 * HOP_S
        f0 = clip.f0_hz[np.isfinite(clip.f0_hz)]
        st = hz_to_st(f0)
        speech_s = float(clip.mask.sum() * HOP_S)
        syl = count_syllables(pl.text)
        utts.append(
            UtteranceTruth(
                index=i,
                turn_index=pl.spec_index,
                speaker=pl.speaker,
                text=pl.text,
                backchannel=pl.backchannel,
                start_s=round(pl.start_frame * HOP_S, 6),
                end_s=round(pl.end_frame * HOP_S, 6),
                segments_s=np.round(segs, 6),
                speech_s=speech_s,
                f0_median_hz=float(np.median(f0)) if f0.size else math.nan,
                f0_median_st=float(np.median(st)) if st.size else math.nan,
                f0_sd_st=float(np.std(st)) if st.size > 1 else math.nan,
                voiced_s=float(f0.size * HOP_S),
                level_db=REF_LEVEL_DBFS + pl.gain_db,
                gain_db=pl.gain_db,
                syllables=syl,
                articulation_rate_per_s=syl / speech_s if speech_s > 0 else math.nan,
                voice=pl.voice,
                espeak_pitch=pl.pitch,
                espeak_range_pct=pl.range_pct,
                espeak_speed_wpm=pl.speed,
                planned_pitch_hz=pl.planned[0],
                planned_range_st=pl.planned[1],
                planned_rate_syl_per_s=pl.planned[2],
            )
        )
    turn_truths = []
    for si, members in enumerate(turn_members):
        us = [utts[k] for k in members]
        f0s = np.concatenate(
            [placed[k].clip.f0_hz[np.isfinite(placed[k].clip.f0_hz)] for k in members]
        )
        st = hz_to_st(f0s)
        speech = sum(u.speech_s for u in us)
        syl = sum(u.syllables for u in us)
        start_s, end_s = us[0].start_s, us[-1].end_s
        level = sum(u.level_db * u.speech_s for u in us) / speech if speech > 0 else math.nan
        turn_truths.append(
            TurnTruth(
                index=si,
                speaker=turns[si].speaker,
                backchannel=turns[si].backchannel,
                start_s=start_s,
                end_s=end_s,
                utterances=tuple(members),
                f0_median_hz=float(np.median(f0s)) if f0s.size else math.nan,
                f0_median_st=float(np.median(st)) if st.size else math.nan,
                f0_sd_st=float(np.std(st)) if st.size > 1 else math.nan,
                level_db=float(level),
                syllables=syl,
                speech_s=speech,
                speaking_rate_per_s=syl / (end_s - start_s) if end_s > start_s else math.nan,
                articulation_rate_per_s=syl / speech if speech > 0 else math.nan,
            )
        )
    return SynthCall(
        audio=audio,
        clean=clean.astype(np.float32),
        sample_rate_hz=sr,
        turns=tuple(turn_truths),
        utterances=tuple(utts),
        f0_hz=f0_track,
        specs=tuple(turns),
        telephone=telephone,
        mulaw=mulaw,
        bleed_db=float(bleed_db) if bleed_db is not None else -math.inf,
        bleed_delay_ms=float(bleed_delay_ms),
        noise_db=float(noise_db) if noise_db is not None else -math.inf,
        hum_hz=hum_hz,
    )


def _misses(clip: _Clip, text: str, planned: tuple[float, float, float]) -> FloatArray:
    """Measured minus planned (median f0 st, f0 sd st, articulation rate); NaN where unknown."""
    out = np.full(3, np.nan)
    f0 = clip.f0_hz[np.isfinite(clip.f0_hz)]
    if f0.size > 1:
        st = hz_to_st(f0)
        if np.isfinite(planned[0]):
            out[0] = float(np.median(st)) - float(hz_to_st(planned[0]))
        if np.isfinite(planned[1]):
            out[1] = float(np.std(st)) - planned[1]
    speech_s = float(clip.mask.sum() * HOP_S)
    if np.isfinite(planned[2]) and speech_s > 0:
        out[2] = count_syllables(text) / speech_s - planned[2]
    return out


def _miss_cost(miss: FloatArray) -> float:
    scaled = np.nan_to_num(miss / np.asarray([RETRY_PITCH_ST, RETRY_SD_ST, RETRY_RATE_PER_S]))
    return float(np.sum(scaled**2))


def _needs_retry(miss: FloatArray, tolerance: float = 1.0) -> bool:
    limits = tolerance * np.asarray([RETRY_PITCH_ST, RETRY_SD_ST, RETRY_RATE_PER_S])
    return bool(np.any(np.abs(np.nan_to_num(miss)) > limits))


def _corrected(
    job: dict[str, Any],
    clip: _Clip,
    text: str,
    planned: tuple[float, float, float],
    *,
    steps: int,
    tolerance: float,
    cal_dir: Path,
) -> tuple[dict[str, Any], _Clip]:
    """The closest of up to ``steps`` re-renders of one utterance (see ``render_call``)."""
    cal = get_calibration(job["voice"], cache_dir=cal_dir)
    miss = _misses(clip, text, planned)
    best = (_miss_cost(miss), job, clip)
    # what the calibration is asked for: median f0 (st), f0 sd (st), rate (syllables/s)
    aim = np.array([hz_to_st(planned[0]), planned[1], planned[2]], dtype=np.float64)
    for _ in range(steps):
        if not _needs_retry(miss, tolerance):
            break
        aim = aim - np.nan_to_num(miss)
        job2 = dict(job)
        if np.isfinite(planned[0]):
            p, r = cal.choose_pitch(float(st_to_hz(aim[0])), float(aim[1]))  # NaN: no sd planned
            job2.update(pitch=p, range_pct=r, f0_range_hz=_pyin_range(cal, p, r, job["voice"]))
        if np.isfinite(planned[2]):
            job2["speed_wpm"] = cal.choose_speed(float(aim[2]))
        if job2 == job:
            break
        job, clip = job2, _render_one(job2)
        miss = _misses(clip, text, planned)
        cost = _miss_cost(miss)
        if cost < best[0]:
            best = (cost, job, clip)
    return best[1], best[2]


def _render_one(job: dict[str, Any]) -> _Clip:
    return _render_clip(**job)


def _render_all(jobs: list[dict[str, Any]], *, workers: int) -> list[_Clip]:
    """Render every job; uncached ones in ``workers`` processes when that is more than 1."""
    if workers <= 1 or len(jobs) < 8:
        return [_render_one(j) for j in jobs]
    import concurrent.futures as cf
    import multiprocessing as mp

    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        return list(pool.map(_render_one, jobs, chunksize=4))


def _backchannel_start(placed: list[_Placed], partner: list[int], at_fraction: float) -> int:
    """Start frame of a backchannel inside the partner turn made of utterances ``partner``."""
    frac = float(np.clip(at_fraction, 0.0, 1.0))
    utts = [placed[k] for k in partner]
    if len(utts) >= 2:
        k = int(np.clip(round(frac * (len(utts) - 1)), 1, len(utts) - 1))
        pause = utts[k].start_frame - utts[k - 1].end_frame
        return utts[k - 1].end_frame + max(5, min(15, pause // 3))
    s, e = utts[0].start_frame, utts[0].end_frame
    return s + int(round(frac * (e - s)))


# --------------------------------------------------------------------------------------
# Truth helpers and output
# --------------------------------------------------------------------------------------


def truth_segments(call: SynthCall, *, include_backchannels: bool = True) -> list[FloatArray]:
    """Each speaker's speech segments, ``[(k0, 2), (k1, 2)]`` seconds, merged across utterances.

    Built on the 10 ms clock from the utterances' truth segments (frames ``[i, i + 1)``).
    """
    masks = np.zeros((2, call.n_frames), dtype=bool)
    for u in call.utterances:
        if u.backchannel and not include_backchannels:
            continue
        for s, e in u.segments_s:
            masks[u.speaker, int(round(s / HOP_S)) : int(round(e / HOP_S))] = True
    return [mask_to_segments(masks[0]), mask_to_segments(masks[1])]


def truth_windows(
    call: SynthCall,
    window_s: float = 16.0,
    hop_s: float = 8.0,
    *,
    include_backchannels: bool = True,
) -> WindowTruth:
    """Per-speaker truth in sliding windows ``[k * hop_s, k * hop_s + window_s)``.

    Windows run while they fit in the call (at least one window). See :class:`WindowTruth`.
    """
    if window_s <= 0 or hop_s <= 0:
        raise ValueError(f"window_s and hop_s must be > 0, got {window_s}, {hop_s}")
    n_win = max(1, int(math.floor((call.duration_s - window_s) / hop_s + 1e-9)) + 1)
    starts = np.arange(n_win, dtype=np.float64) * float(hop_s)
    shape = (2, n_win)
    pitch, pitch_sd = np.full(shape, np.nan), np.full(shape, np.nan)
    level, rate, speech = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape)
    lw = np.zeros(shape)
    rw = np.zeros(shape)
    for u in call.utterances:
        if u.backchannel and not include_backchannels:
            continue
        segs = u.segments_s.reshape(-1, 2)
        for w, w0 in enumerate(starts):
            w1 = w0 + window_s
            ov = float(
                np.clip(np.minimum(segs[:, 1], w1) - np.maximum(segs[:, 0], w0), 0, None).sum()
            )
            if ov <= 0:
                continue
            speech[u.speaker, w] += ov
            lw[u.speaker, w] += ov * u.level_db
            if np.isfinite(u.articulation_rate_per_s):
                rw[u.speaker, w] += ov * u.articulation_rate_per_s
    ok = speech > 0
    level[ok] = lw[ok] / speech[ok]
    rate[ok] = rw[ok] / speech[ok]
    f0 = call.f0_hz
    if not include_backchannels:
        f0 = f0.copy()
        for u in call.utterances:
            if u.backchannel:
                f0[u.speaker, int(round(u.start_s / HOP_S)) : int(round(u.end_s / HOP_S))] = np.nan
    times = np.arange(f0.shape[1]) * HOP_S
    for w, w0 in enumerate(starts):
        sel = (times >= w0) & (times < w0 + window_s)
        for c in (0, 1):
            v = f0[c, sel]
            v = v[np.isfinite(v)]
            if v.size:
                st = hz_to_st(v)
                pitch[c, w] = float(np.median(st))
                pitch_sd[c, w] = float(np.std(st))
    return WindowTruth(
        starts_s=starts,
        window_s=float(window_s),
        pitch_st=pitch,
        pitch_sd_st=pitch_sd,
        level_db=level,
        rate_per_s=rate,
        speech_s=speech,
    )


def write_wav(
    path: str | os.PathLike[str], call: SynthCall, *, encoding: Literal["pcm16", "mulaw"] = "pcm16"
) -> None:
    """Write ``call.audio`` as a stereo WAV: 16-bit PCM or G.711 mu-law (soundfile)."""
    import soundfile as sf

    subtype = {"pcm16": "PCM_16", "mulaw": "ULAW"}.get(encoding)
    if subtype is None:
        raise ValueError(f"encoding must be 'pcm16' or 'mulaw', got {encoding!r}")
    sf.write(str(path), np.ascontiguousarray(call.audio.T), call.sample_rate_hz, subtype=subtype)


def _clean_float(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def truth_to_dict(call: SynthCall) -> dict[str, Any]:
    """JSON-ready truth (NaN becomes null): call settings, turns, utterances, segments."""

    def utt(u: UtteranceTruth) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for k, v in u.__dict__.items():
            if isinstance(v, np.ndarray):
                d[k] = [[round(float(a), 3) for a in row] for row in v]
            elif isinstance(v, float):
                d[k] = _clean_float(v)
            else:
                d[k] = v
        return d

    def turn(t: TurnTruth) -> dict[str, Any]:
        return {
            k: (_clean_float(v) if isinstance(v, float) else list(v) if isinstance(v, tuple) else v)
            for k, v in t.__dict__.items()
        }

    segs = truth_segments(call)
    return {
        "sample_rate_hz": call.sample_rate_hz,
        "duration_s": round(call.duration_s, 3),
        "channels": {"0": "agent", "1": "customer"},
        "telephone": call.telephone,
        "mulaw": call.mulaw,
        "bleed_db": _clean_float(call.bleed_db),
        "bleed_delay_ms": call.bleed_delay_ms,
        "noise_db": _clean_float(call.noise_db),
        "hum_hz": call.hum_hz,
        "reference_level_dbfs": REF_LEVEL_DBFS,
        "espeak": espeak_version(),
        "segments_s": [[[round(float(a), 3) for a in row] for row in s] for s in segs],
        "turns": [turn(t) for t in call.turns],
        "utterances": [utt(u) for u in call.utterances],
    }


# --------------------------------------------------------------------------------------
# Scenario planners
# --------------------------------------------------------------------------------------

#: Stationary sd of each feature's per-utterance AR(1) walk.
PLAN_SIGMA = {
    "pitch_level": 1.2,
    "pitch_variability": 0.35,
    "loudness": 2.0,
    "articulation_rate": 0.5,
}
#: AR(1) coefficient between consecutive utterances of one speaker.
PLAN_AR = 0.7
_LIMITS = {
    "pitch_variability": (0.4, 2.6),
    "loudness": (-14.0, 10.0),
    "articulation_rate": (2.8, 7.5),
}
_PITCH_LIMITS_HZ = {True: (130.0, 280.0), False: (72.0, 155.0)}  # female?, male
_WALKED = ("pitch_level", "pitch_variability", "loudness", "articulation_rate")
#: Speaking rate over articulation rate for a typical turn (used as the speaking-rate baseline).
_SR_RATIO = 0.87


def _syllables_of(text: str | int) -> int:
    return int(text) if isinstance(text, int) else count_syllables(text)


def planned_speaking_rate(spec: TurnSpec) -> float:
    """Planned syllables per second over a turn, pauses between utterances included."""
    texts = list(spec.text) if isinstance(spec.text, tuple) else [spec.text]
    n = len(texts)
    rates = _per_utt(spec.rate_syl_per_s, n, "rate_syl_per_s")
    pauses = _per_utt(spec.pause_s, max(n - 1, 1), "pause_s")[: n - 1]
    syl = [_syllables_of(t) for t in texts]
    if any(r is None for r in rates):
        return math.nan
    dur = sum(s / float(r) for s, r in zip(syl, rates, strict=True)) + sum(map(float, pauses))
    return sum(syl) / dur if dur > 0 else math.nan


def planned_utterance_values(turn: TurnSpec, feature: str) -> list[float]:
    """Planned value of a per-sentence ``feature`` (not speaking_rate) for each sentence of
    ``turn``, in the units of :func:`planned_turn_values`."""
    attr = {
        "pitch_level": turn.pitch_hz,
        "pitch_variability": turn.pitch_range_st,
        "loudness": turn.gain_db,
        "articulation_rate": turn.rate_syl_per_s,
    }[feature]
    vals = [math.nan if v is None else float(v) for v in _per_utt(attr, turn.n_utterances, feature)]
    if feature == "pitch_level":
        vals = [float(hz_to_st(v)) for v in vals]
    return vals


def planned_turn_values(turns: Sequence[TurnSpec], feature: str) -> dict[str, FloatArray]:
    """Planned turn-initial and turn-final value of ``feature`` for each non-backchannel turn.

    Units: pitch_level st re 100 Hz, pitch_variability st, loudness dB (gain),
    articulation_rate and speaking_rate syllables/s (speaking rate is one value per turn, so
    initial == final). Returns ``{"index", "speaker", "initial", "final"}`` arrays.
    """
    if feature not in FEATURES:
        raise ValueError(f"feature must be one of {FEATURES}, got {feature!r}")
    idx, spk, ini, fin = [], [], [], []
    for i, t in enumerate(turns):
        if t.backchannel:
            continue
        if feature == "speaking_rate":
            a = b = planned_speaking_rate(t)
        else:
            vals = planned_utterance_values(t, feature)
            a, b = vals[0], vals[-1]
        idx.append(i)
        spk.append(t.speaker)
        ini.append(a)
        fin.append(b)
    return {
        "index": np.asarray(idx, dtype=np.float64),
        "speaker": np.asarray(spk, dtype=np.float64),
        "initial": np.asarray(ini, dtype=np.float64),
        "final": np.asarray(fin, dtype=np.float64),
    }


class _Baselines:
    """Per-speaker feature baselines, possibly moving with (estimated) call time."""

    def __init__(
        self,
        kind: str,
        *,
        duration_s: float,
        female: tuple[bool, bool],
        features: tuple[str, ...],
        mover: str,
        rng: np.random.Generator,
    ) -> None:
        self.kind = kind
        self.duration_s = duration_s
        self.female = female
        self.features = features
        self.mover = mover
        base: dict[str, list[float]] = {
            "pitch_level": [
                float(hz_to_st(rng.uniform(170, 215) if f else rng.uniform(90, 120)))
                for f in female
            ],
            "pitch_variability": [rng.uniform(1.0, 1.9), rng.uniform(1.0, 1.9)],
            "loudness": [0.0, rng.uniform(-4.0, 4.0)],
            "articulation_rate": [rng.uniform(4.0, 5.5), rng.uniform(4.0, 5.5)],
        }
        self.base = base
        # converge / diverge: start and end distance per feature
        self.sched: dict[str, tuple[float, float, float, float]] = {}  # mid, sign0, d0, d1
        if kind in ("converge", "diverge"):
            spans = {
                "pitch_level": (4.0, 0.25, 1.0, 5.0),
                "pitch_variability": (1.2, 0.3, 0.3, 1.5),
                "loudness": (8.0, 2.0, 1.0, 9.0),
                "articulation_rate": (1.6, 0.4, 0.3, 2.0),
            }
            for f in _WALKED:
                if f not in features:
                    continue
                b0, b1 = base[f]
                conv_d0, conv_end, div_d0, div_gain = spans[f]
                sign = 1.0 if b0 >= b1 else -1.0
                if f == "pitch_level" and female[0] != female[1]:
                    d0 = abs(b0 - b1)  # cross-sex: keep the natural distance
                    sign = 1.0 if female[0] else -1.0
                else:
                    d0 = conv_d0 if kind == "converge" else div_d0
                if kind == "converge":
                    d1 = conv_end if f != "pitch_level" else conv_end * d0
                else:
                    d1 = d0 + div_gain
                self.sched[f] = ((b0 + b1) / 2.0, sign, d0, d1)
        self.waves: dict[tuple[int, str], tuple[float, float, float, float, float]] = {}
        if kind == "varying":
            amp = {
                "pitch_level": 3.0,
                "pitch_variability": 0.7,
                "loudness": 5.0,
                "articulation_rate": 1.2,
            }
            for s in (0, 1):
                for f in _WALKED:
                    self.waves[(s, f)] = (
                        amp[f],
                        rng.uniform(60.0, 120.0),
                        rng.uniform(25.0, 50.0),
                        rng.uniform(0, 2 * np.pi),
                        rng.uniform(0, 2 * np.pi),
                    )

    def at(self, speaker: int, feature: str, t_s: float) -> float:
        b = self.base[feature][speaker]
        if feature in self.sched:
            mid, sign, d0, d1 = self.sched[feature]
            frac = float(np.clip(t_s / self.duration_s, 0.0, 1.0))
            d = d0 + (d1 - d0) * frac
            s_sign = sign if speaker == 0 else -sign
            if self.mover == "both":
                b = mid + s_sign * d / 2.0
            else:
                other = 1 - ROLES[self.mover]
                other_sign = sign if other == 0 else -sign
                still = mid + other_sign * d0 / 2.0  # the non-mover keeps its start baseline
                b = still if speaker == other else still - other_sign * d
        if (speaker, feature) in self.waves:
            a, p1, p2, ph1, ph2 = self.waves[(speaker, feature)]
            b += a * (np.sin(2 * np.pi * t_s / p1 + ph1) + 0.6 * np.sin(2 * np.pi * t_s / p2 + ph2))
        return float(b)


def _clip_feature(feature: str, value: float, female: bool) -> float:
    if feature == "pitch_level":
        lo, hi = _PITCH_LIMITS_HZ[female]
        return float(np.clip(value, hz_to_st(lo), hz_to_st(hi)))
    lo, hi = _LIMITS[feature]
    return float(np.clip(value, lo, hi))


def plan_call(
    kind: str,
    *,
    duration_s: float = 180.0,
    rng: np.random.Generator,
    follower: str | None = None,
    feature: str | Sequence[str] | None = None,
    strength: float = 0.6,
    plant: str = "edge",
    female: tuple[bool, bool] | None = None,
) -> list[TurnSpec]:
    """Plan a call of about ``duration_s`` seconds with a known relation between the speakers.

    Every speaker has a baseline per feature (pitch level, pitch variability, loudness,
    articulation rate) and walks around it from utterance to utterance as an AR(1) process
    (coefficient :data:`PLAN_AR`, stationary sd :data:`PLAN_SIGMA`). Turns alternate
    (agent first), hold 1-4 sentences with 0.15-0.7 s pauses, are separated by 0.1-1.5 s gaps
    (7 % overlap by 0.2-0.7 s); a third of multi-sentence turns get a backchannel from the
    partner.

    Parameters
    ----------
    kind : {"independent", "follow", "converge", "diverge", "varying"}
        independent: fixed baselines, independent walks. follow: at the start of each of
        their turns the follower's ``feature`` deviation from its own baseline is
        ``strength`` x the leader's turn-final deviation (from the leader's baseline) plus
        ``1 - strength`` x its own AR proposal (movement is followed, levels are not
        copied); for speaking_rate the whole turn's planned rate follows the leader's
        previous turn's. converge / diverge: the distance between the baselines of
        ``feature`` (``"all"`` for every feature; the default for these kinds) shrinks to
        about a quarter / grows linearly over the call; ``follower`` is who moves
        ("both" by default). varying: every feature's baseline swings strongly and slowly
        (two sinusoids, periods 25-120 s) for each speaker independently.
    duration_s : float
        Planned length; the rendered call runs within about 10 % of it.
    rng : numpy.random.Generator
    follower : {"agent", "customer", "both"} or None
        Who follows (follow; default "customer") or who moves (converge / diverge;
        default "both").
    feature : one of FEATURES, a tuple of them (follow only), "all" (converge / diverge
        only) or None
        The feature followed (default "pitch_level") or whose baselines converge / diverge
        (default "all"). follow with a tuple plants the same following in each of its
        features (not both speaking_rate and articulation_rate: the speaking rate is
        planted through the articulation rate). Ignored by independent and varying, which
        move every feature.
    strength : float
        Share of the leader in the follower's turn-initial value (0-1).
    plant : {"edge", "turn"}
        follow (not speaking_rate, which is planted per turn either way): "edge" plants on
        the follower's first sentence, from the leader's turn-final value (as above);
        "turn" plants every sentence of the follower's turn, from the mean deviation of
        the leader's previous turn: at ``strength=1`` the follower's whole turn copies the
        leader's turn (the wording of the acceptance test, as ``--plant turn`` in
        bench/mirroring_sim.py).
    female : (bool, bool) or None
        Voice sex per speaker; random when None.

    Returns
    -------
    list of TurnSpec
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if follower is None:
        follower = "both" if kind in ("converge", "diverge") else "customer"
    if feature is None:
        feature = "all" if kind in ("converge", "diverge") else "pitch_level"
    if follower not in ("agent", "customer", "both"):
        raise ValueError(f"follower must be agent, customer or both, got {follower!r}")
    followed: tuple[str, ...] = (feature,) if isinstance(feature, str) else tuple(feature)
    if isinstance(feature, str):
        if feature not in FEATURES and feature != "all":
            raise ValueError(f"feature must be one of {FEATURES} or 'all', got {feature!r}")
    elif kind != "follow" or not followed or any(f not in FEATURES for f in followed):
        raise ValueError(f"several features are for follow, each one of {FEATURES}")
    elif {"speaking_rate", "articulation_rate"} <= set(followed):
        raise ValueError("follow speaking_rate or articulation_rate, not both")
    if kind == "follow" and (feature == "all" or follower == "both"):
        raise ValueError("follow needs features and follower 'agent' or 'customer'")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if plant not in ("edge", "turn"):
        raise ValueError(f"plant must be 'edge' or 'turn', got {plant!r}")
    if female is None:
        female = (bool(rng.random() < 0.5), bool(rng.random() < 0.5))
    feats: tuple[str, ...]
    if feature == "all":
        feats = _WALKED
    else:
        feats = tuple(dict.fromkeys(_walked_feature(f) for f in followed))
    mover = follower if kind in ("converge", "diverge") else "both"
    bl = _Baselines(
        kind, duration_s=duration_s, female=female, features=feats, mover=mover, rng=rng
    )
    voices = tuple(FEMALE_VOICE if f else MALE_VOICE for f in female)
    sig_scale = {"varying": 0.5, "converge": 0.6, "diverge": 0.6}.get(kind, 1.0)
    state: list[dict[str, float]] = [{f: bl.at(s, f, 0.0) for f in _WALKED} for s in (0, 1)]
    last_t = [0.0, 0.0]
    follower_idx = ROLES.get(follower, -1) if kind == "follow" else -1
    innov = math.sqrt(1 - PLAN_AR**2)

    def step(s: int, t: float) -> dict[str, float]:
        out = {}
        for f in _WALKED:
            b_now, b_prev = bl.at(s, f, t), bl.at(s, f, last_t[s])
            v = b_now + PLAN_AR * (state[s][f] - b_prev)
            v += sig_scale * PLAN_SIGMA[f] * innov * float(rng.standard_normal())
            out[f] = _clip_feature(f, v, female[s])
        return out

    specs: list[TurnSpec] = []
    t = 0.0
    speaker = 0
    prev_main: TurnSpec | None = None
    prev_final: dict[str, float] = {}
    # the leader's previous turn: mean deviation of each followed feature
    prev_mean_dev: dict[str, float] = dict.fromkeys(followed, 0.0)
    prev_t = 0.0
    while t < duration_s - 3.0:
        n_utt = int(rng.choice([1, 2, 3, 4], p=[0.35, 0.3, 0.2, 0.15]))
        texts = tuple(make_sentence(rng) for _ in range(n_utt))
        syl = [count_syllables(x) for x in texts]
        pauses = tuple(float(round(rng.uniform(0.15, 0.7), 2)) for _ in range(max(n_utt - 1, 1)))
        values: list[dict[str, float]] = []
        for u in range(n_utt):
            v = step(speaker, t)
            for feat in followed:
                if (
                    (u == 0 or plant == "turn")
                    and speaker == follower_idx
                    and prev_main is not None
                    and prev_main.speaker != speaker
                    and feat != "speaking_rate"
                ):
                    dev_l = (
                        prev_mean_dev[feat]
                        if plant == "turn"
                        else prev_final[feat] - bl.at(1 - speaker, feat, prev_t)
                    )
                    dev_own = v[feat] - bl.at(speaker, feat, t)
                    v[feat] = _clip_feature(
                        feat,
                        bl.at(speaker, feat, t) + strength * dev_l + (1 - strength) * dev_own,
                        female[speaker],
                    )
            state[speaker] = v
            last_t[speaker] = t
            values.append(v)
        rates = [v["articulation_rate"] for v in values]
        pause_list = list(pauses[: n_utt - 1]) if n_utt > 1 else [pauses[0]]
        if (
            "speaking_rate" in followed
            and speaker == follower_idx
            and prev_main is not None
            and prev_main.speaker != speaker
        ):
            own = _sr(syl, rates, pause_list[: n_utt - 1])
            lead = planned_speaking_rate(prev_main)
            b_f = _SR_RATIO * bl.at(speaker, "articulation_rate", t)
            b_l = _SR_RATIO * bl.at(1 - speaker, "articulation_rate", prev_t)
            target = b_f + strength * (lead - b_l) + (1 - strength) * (own - b_f)
            rates, pause_list = _realise_sr(target, syl, pause_list, n_utt)
            for v, r in zip(values, rates, strict=True):
                v["articulation_rate"] = r
            state[speaker]["articulation_rate"] = rates[-1]
        if t == 0.0:
            gap = float(rng.uniform(0.3, 0.8))
        elif rng.random() < 0.07:
            gap = -float(rng.uniform(0.2, 0.7))
        else:
            gap = float(np.clip(rng.lognormal(math.log(0.45), 0.6), 0.1, 1.5))
        spec = TurnSpec(
            speaker=speaker,
            text=texts,
            pitch_hz=tuple(round(float(st_to_hz(v["pitch_level"])), 2) for v in values),
            pitch_range_st=tuple(round(v["pitch_variability"], 3) for v in values),
            rate_syl_per_s=tuple(round(float(r), 3) for r in rates),
            gain_db=tuple(round(v["loudness"], 2) for v in values),
            gap_s=round(gap, 3),
            pause_s=tuple(round(p, 3) for p in pause_list),
            voice=voices[speaker],
        )
        specs.append(spec)
        dur = sum(s / r for s, r in zip(syl, rates, strict=True)) + sum(pause_list[: n_utt - 1])
        dur = 1.15 * dur + 0.15 * n_utt  # espeak runs a little slower than planned
        if n_utt >= 2 and rng.random() < 0.35:
            other = 1 - speaker
            ov = state[other]
            word = str(rng.choice(BACKCHANNELS))
            specs.append(
                TurnSpec(
                    speaker=other,
                    text=word,
                    pitch_hz=round(float(st_to_hz(ov["pitch_level"])), 2),
                    pitch_range_st=round(ov["pitch_variability"], 3),
                    rate_syl_per_s=round(ov["articulation_rate"], 3),
                    gain_db=round(ov["loudness"] - 2.0, 2),
                    backchannel=True,
                    at_fraction=round(float(rng.uniform(0.2, 0.9)), 3),
                    voice=voices[other],
                )
            )
        prev_main = spec
        prev_final = values[-1]
        if plant == "turn":
            for feat in followed:
                if feat in _WALKED:
                    prev_mean_dev[feat] = float(np.mean([v[feat] for v in values])) - bl.at(
                        speaker, feat, t
                    )
        prev_t = t
        t += max(gap, 0.0) + dur
        speaker = 1 - speaker
    return specs


def _walked_feature(feature: str) -> str:
    """The walked feature that plans ``feature`` (speaking rate: the articulation rate)."""
    return "articulation_rate" if feature == "speaking_rate" else feature


def _sr(syl: Sequence[int], rates: Sequence[float], pauses: Sequence[float]) -> float:
    dur = sum(s / r for s, r in zip(syl, rates, strict=True)) + sum(pauses)
    return sum(syl) / dur if dur > 0 else math.nan


def _realise_sr(
    target: float, syl: Sequence[int], pauses: list[float], n_utt: int
) -> tuple[list[float], list[float]]:
    """Articulation rates (one per utterance, equal) and pauses giving speaking rate ``target``."""
    lo, hi = _LIMITS["articulation_rate"]
    target = float(np.clip(target, 0.6 * lo, hi))
    total = sum(syl)
    if n_utt == 1:
        r = float(np.clip(target, lo, hi))
        return [r], pauses
    p = list(pauses[: n_utt - 1])
    denom = total / target - sum(p)
    ar = total / denom if denom > 0 else hi
    if not lo <= ar <= hi:
        ar = float(np.clip(ar, lo, hi))
        each = (total / target - total / ar) / (n_utt - 1)
        p = [float(np.clip(each, 0.08, 1.6))] * (n_utt - 1)
    return [float(ar)] * n_utt, [round(x, 3) for x in p]
