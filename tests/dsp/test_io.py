"""Decoding: every format we claim, channel order, rates, and every kind of bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dsp import errors
from dsp.io import decode, iter_blocks, probe
from tests.audiofiles import FORMATS, two_tone, write_audio, write_format


def _dominant_hz(samples: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    spectrum = np.abs(np.fft.rfft(samples, axis=1))
    return np.fft.rfftfreq(samples.shape[1], 1.0 / sample_rate_hz)[spectrum.argmax(axis=1)]


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("sample_rate_hz", [8000, 44100])
def test_every_format_decodes_with_channel_order_and_rate(
    tmp_path: Path, name: str, sample_rate_hz: int
) -> None:
    path = write_format(tmp_path / name, name, two_tone(sample_rate_hz, 1.0), sample_rate_hz)
    audio = decode(path)
    _, _, codec, codec_rate = FORMATS[name]
    native = codec_rate or sample_rate_hz
    assert audio.info.native_rate_hz == native
    # never upsampled; above 16 kHz, decoded at 16 kHz
    assert audio.sample_rate_hz == min(native, 16000)
    assert audio.samples.dtype == np.float32 and audio.samples.shape[0] == 2
    assert 0.95 <= audio.duration_s <= 1.2  # codec priming/padding adds a little
    np.testing.assert_allclose(
        _dominant_hz(audio.samples, audio.sample_rate_hz), [300, 700], rtol=0.01
    )


def test_eight_khz_stays_eight_khz(tmp_path: Path) -> None:
    path = write_format(tmp_path / "call", "wav_mulaw", two_tone(8000, 1.0), 8000)
    assert decode(path).sample_rate_hz == 8000
    assert probe(path).sample_rate_hz == 8000


def test_bytes_and_file_objects_decode_like_paths(tmp_path: Path) -> None:
    path = write_format(tmp_path / "call", "flac", two_tone(16000, 1.0), 16000)
    from_path = decode(path).samples
    np.testing.assert_array_equal(decode(path.read_bytes()).samples, from_path)
    with path.open("rb") as handle:
        np.testing.assert_array_equal(decode(handle).samples, from_path)


def test_blocks_cover_the_signal_exactly(tmp_path: Path) -> None:
    y = two_tone(8000, 12.5)
    path = write_audio(tmp_path / "long.wav", y, 8000)
    info, blocks = iter_blocks(path, block_s=5.0)
    parts = list(blocks)
    assert [p.shape[1] for p in parts] == [40000, 40000, 20000]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), y, atol=1e-4)


def _expect(code: str, source: object, **kwargs: object) -> None:
    with pytest.raises(errors.InputError) as caught:
        decode(source, **kwargs)  # type: ignore[arg-type]
    assert caught.value.code == code
    assert len(caught.value.message) > 20  # says what is wrong and what would work


def test_missing_file() -> None:
    _expect("input.not_found", "/nonexistent/call.wav")


def test_empty_file_and_empty_bytes(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    _expect("audio.empty", empty)
    _expect("audio.empty", b"")


def test_text_and_random_bytes_are_undecodable(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio, just a text file\n" * 20)
    _expect("audio.undecodable", text)
    _expect("audio.undecodable", np.random.default_rng(0).bytes(20000))


def test_truncated_wav(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "full.wav", two_tone(8000, 2.0), 8000)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(path.read_bytes()[: 44 + 8000 * 4 // 2])
    _expect("audio.truncated", cut)
    header_only = tmp_path / "header.wav"
    header_only.write_bytes(path.read_bytes()[:30])
    _expect("audio.undecodable", header_only)


def test_mono_and_too_many_channels(tmp_path: Path) -> None:
    mono = write_audio(tmp_path / "mono.wav", two_tone(8000, 1.0)[:1], 8000)
    _expect("audio.not_stereo", mono)
    three = np.vstack([two_tone(8000, 1.0), two_tone(8000, 1.0)[:1]])
    _expect("audio.too_many_channels", write_audio(tmp_path / "three.wav", three, 8000))


def test_too_short_and_too_long(tmp_path: Path) -> None:
    _expect("audio.too_short", write_audio(tmp_path / "short.wav", two_tone(8000, 0.3), 8000))
    long = write_audio(tmp_path / "long.wav", two_tone(8000, 5.0), 8000)
    _expect("audio.too_long", long, max_duration_s=2.0)


def test_rate_below_telephony_is_refused(tmp_path: Path) -> None:
    _expect("audio.bad_sample_rate", write_audio(tmp_path / "4k.wav", two_tone(4000, 1.0), 4000))


def test_non_finite_samples(tmp_path: Path) -> None:
    y = two_tone(8000, 1.0)
    y[1, 4000] = np.nan
    path = write_audio(tmp_path / "nan.wav", y, 8000, codec="pcm_f32le")
    _expect("audio.non_finite", path)
