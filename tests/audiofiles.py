"""Write real encoded test recordings (every container/codec we claim to read) with PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

# (file suffix, container format, codec, encoder rate or None for the signal's own rate)
FORMATS: dict[str, tuple[str, str, str, int | None]] = {
    "wav_u8": (".wav", "wav", "pcm_u8", None),
    "wav_s16": (".wav", "wav", "pcm_s16le", None),
    "wav_s24": (".wav", "wav", "pcm_s24le", None),
    "wav_s32": (".wav", "wav", "pcm_s32le", None),
    "wav_f32": (".wav", "wav", "pcm_f32le", None),
    "wav_f64": (".wav", "wav", "pcm_f64le", None),
    "wav_mulaw": (".wav", "wav", "pcm_mulaw", None),
    "wav_alaw": (".wav", "wav", "pcm_alaw", None),
    "flac": (".flac", "flac", "flac", None),
    "ogg_vorbis": (".ogg", "ogg", "vorbis", None),
    "ogg_opus": (".opus", "ogg", "libopus", 48000),
    "webm_opus": (".webm", "webm", "libopus", 48000),
    "mp3": (".mp3", "mp3", "libmp3lame", None),
    "m4a_aac": (".m4a", "ipod", "aac", None),
}


def two_tone(
    sample_rate_hz: int, duration_s: float, freqs_hz: tuple[float, float] = (300.0, 700.0)
) -> npt.NDArray[np.float32]:
    """Stereo test signal: a different tone on each channel, so channel order is checkable."""
    t = np.arange(int(sample_rate_hz * duration_s)) / sample_rate_hz
    return np.stack([0.4 * np.sin(2 * np.pi * f * t) for f in freqs_hz]).astype(np.float32)


def write_audio(
    path: Path,
    samples: npt.NDArray[np.float32],
    sample_rate_hz: int,
    *,
    container: str = "wav",
    codec: str = "pcm_s16le",
    codec_rate_hz: int | None = None,
    bitexact: bool = False,
) -> Path:
    """Encode channels-first float samples (1 or more channels) into ``path``; with
    ``bitexact`` the same samples give the same bytes (no random Ogg serials, Matroska UIDs
    or encoder version strings)."""
    import av

    samples = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    n_channels = samples.shape[0]
    layout = {1: "mono", 2: "stereo"}.get(n_channels, f"{n_channels}c")
    rate = codec_rate_hz or sample_rate_hz
    container_options = {"fflags": "+bitexact"} if bitexact else {}
    with av.open(str(path), mode="w", format=container, container_options=container_options) as out:
        # FFmpeg's native Vorbis encoder is marked experimental; it is the one PyAV ships.
        options = {"strict": "experimental"} if codec == "vorbis" else {}
        stream = out.add_stream(codec, rate=rate, layout=layout, options=options)
        resampler = av.AudioResampler(
            format=stream.codec_context.codec.audio_formats[0].name, layout=layout, rate=rate
        )
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples), format="fltp", layout=layout
        )
        frame.sample_rate = sample_rate_hz
        for converted in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(converted):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def write_format(
    path_stem: Path,
    name: str,
    samples: npt.NDArray[np.float32],
    sample_rate_hz: int,
    *,
    bitexact: bool = False,
) -> Path:
    suffix, container, codec, codec_rate = FORMATS[name]
    return write_audio(
        path_stem.with_suffix(suffix),
        samples,
        sample_rate_hz,
        container=container,
        codec=codec,
        codec_rate_hz=codec_rate,
        bitexact=bitexact,
    )


def with_silent_channel(source: Path, path: Path, channel: int = 1) -> Path:
    """``source`` decoded, ``channel`` zeroed, written to ``path`` as 8 kHz mu-law WAV:
    a call where one party never speaks."""
    from dsp.io import decode

    audio = decode(source)
    samples = audio.samples.copy()
    samples[channel] = 0.0
    write_audio(path, samples, audio.info.sample_rate_hz, codec="pcm_mulaw")
    return path
