"""Stage 1 of a live stream's finished minutes, computed while the call goes on.

A streamed call's audio is spooled to a 16-bit stereo WAV file. Each time a whole analysis
block (the pipeline's ``block_s``) and its right context are in it, :func:`compute_block`
(in an analysis worker process) reads that block's PCM from the file, computes its stage-1
tracks exactly as the batch analysis would (``dsp.pipeline.block_tracks``) and writes them
next to the WAV (``<wav name>.stage1-<index>.npz``) with the CRC of the PCM they came from.
The stream's analysis job then takes the whole call's stage 1 from them
(:func:`call_stage1`) without decoding the call: it reads the file's PCM, uses a kept block
only where the CRC of the same bytes matches, and computes the others (the last one, with
no right context until the call ended) from that PCM. The report of a long call is ready
soon after the stop, and equal to the batch report of the same audio.
"""

from __future__ import annotations

import glob
import mmap
import os
import zlib
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dsp.frames import frame_count, hop_samples
from dsp.io import DEFAULT_MAX_RATE_HZ, AudioInfo
from dsp.params import AnalysisParams
from dsp.pipeline import (
    ANALYSIS_VERSION,
    FrameTracks,
    KeptStage1,
    QualityTally,
    block_tracks,
    context_samples,
    stack_tracks,
    track_shapes,
    unstack_tracks,
)

#: Both channels' stage-1 tracks of one block's kept frames.
BlockTracks = Sequence[tuple[npt.NDArray[np.float32], ...]]

_PART = ".stage1-"


def block_path(audio: Path, index: int) -> Path:
    """Where block ``index`` of the call in ``audio`` is kept."""
    return audio.with_name(f"{audio.name}{_PART}{index:05d}.npz")


def parts(audio: Path) -> list[Path]:
    """The blocks kept for ``audio``."""
    return sorted(audio.parent.glob(f"{glob.escape(audio.name)}{_PART}*.npz"))


def is_part_of(path: Path, audio_names: set[str]) -> bool:
    """Whether ``path`` is a block kept for one of the audio files named."""
    name, sep, _ = path.name.partition(_PART)
    return bool(sep) and name in audio_names


def move(source: Path, target: Path) -> int:
    """The blocks of ``source`` become those of ``target`` (the audio moved); how many."""
    found = parts(source)
    for path in found:
        index = int(path.name.rsplit(_PART, 1)[1].split(".")[0])
        os.replace(path, block_path(target, index))
    return len(found)


def remove(audio: Path) -> None:
    """Delete the blocks kept for ``audio``."""
    for path in parts(audio):
        path.unlink(missing_ok=True)


def geometry(sample_rate_hz: int, params: AnalysisParams) -> tuple[int, int] | None:
    """(block length, context) in samples, or None when blocks do not fall on the frame
    clock or the job resamples the audio (then nothing is computed ahead)."""
    if sample_rate_hz > DEFAULT_MAX_RATE_HZ:
        return None
    hop = hop_samples(sample_rate_hz)
    block_len = max(1, int(round(params.block_s * sample_rate_hz)))
    context = context_samples(sample_rate_hz)
    if block_len % hop or block_len < context:
        return None
    return block_len, context


def wav_data(path: Path) -> tuple[int, int | None]:
    """Byte offset of the samples of a PCM WAV file (its ``data`` chunk) and the size the
    header gives them (None while a stream is still writing the file)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    at = head.find(b"data", 12)
    if head[:4] != b"RIFF" or at < 0:
        raise ValueError(f"{path.name} is not a RIFF WAV file with a data chunk")
    size = int.from_bytes(head[at + 4 : at + 8], "little")
    return at + 8, None if size in (0, 0xFFFFFFFF) else size


def pcm_to_float(raw: bytes) -> npt.NDArray[np.float32]:
    """Interleaved 16-bit stereo PCM -> (2, n) float32 with the arithmetic dsp.io uses for
    it: the samples the job decodes, bit for bit."""
    out = np.frombuffer(raw, dtype="<i2").reshape(-1, 2).T.astype(np.float32)
    out *= np.float32(1.0 / 32768.0)
    return out


def _region(index: int, block_len: int, context: int, n_samples: int) -> tuple[int, int, int]:
    """(first sample, end sample, left context) of block ``index`` with its context, as
    ``dsp.pipeline.frame_tracks`` pads it, in a call of ``n_samples``."""
    left = context if index else 0
    start = index * block_len
    return start - left, min(start + block_len + context, n_samples), left


def _block_stage1(
    raw: bytes,
    sample_rate_hz: int,
    params: AnalysisParams,
    index: int,
    block_len: int,
    left: int,
    length: int,
) -> tuple[BlockTracks, QualityTally]:
    """The tracks of block ``index`` of ``block_len`` samples (``length`` of them here, after
    ``left`` of context in the PCM ``raw``) and the quality tally of its own samples."""
    padded = pcm_to_float(raw)
    hop = hop_samples(sample_rate_hz)
    is_last = padded.shape[1] == left + length  # no right context: the call's end
    n_keep = frame_count(length, sample_rate_hz) if is_last else length // hop
    tracks = block_tracks(
        padded,
        sample_rate_hz,
        params,
        first=left // hop,
        n_keep=n_keep,
        call_frame=index * (block_len // hop),
    )
    tally = QualityTally()
    tally.add(padded[:, left : left + length], sample_rate_hz)
    return tracks, tally


def compute_block(
    wav_path: str,
    data_offset: int,
    sample_rate_hz: int,
    index: int,
    params: AnalysisParams,
    n_samples: int | None = None,
) -> bool:
    """Compute block ``index`` of a 16-bit stereo WAV being written and keep its tracks next
    to it; False when the file does not hold the block and its right context yet.

    ``n_samples``: the call ended with that many samples (its last blocks have only the
    context there is); None while it goes on.
    """
    shape = geometry(sample_rate_hz, params)
    if shape is None:
        return False
    block_len, context = shape
    end = (index + 1) * block_len + context if n_samples is None else n_samples
    start, stop, left = _region(index, block_len, context, end)
    if stop <= start + left:  # no sample of the block itself
        return False
    with open(wav_path, "rb") as f:
        f.seek(data_offset + 4 * start)
        raw = f.read(4 * (stop - start))
    if len(raw) < 4 * (stop - start):
        return False
    length = min(block_len, stop - start - left)
    tracks, tally = _block_stage1(raw, sample_rate_hz, params, index, block_len, left, length)
    target = block_path(Path(wav_path), index)
    partial = target.with_name(target.name + ".part")
    arrays: dict[str, Any] = {f"tally_{k}": np.asarray(v) for k, v in vars(tally).items()}
    arrays["tracks"] = np.stack([stack_tracks(channel) for channel in tracks])
    arrays["checksum"] = np.int64(zlib.crc32(raw))
    arrays["key"] = np.array(_key(params))
    with open(partial, "wb") as f:
        np.savez(f, **arrays)
    os.replace(partial, target)
    return True


def call_stage1(audio: Path, params: AnalysisParams) -> KeptStage1 | None:
    """What ``dsp.pipeline.analyze`` takes to find the call's stage 1 without decoding it
    (None when no block is kept for ``audio``): given the call's header, its tracks and
    tally from the kept blocks whose PCM is unchanged, the other blocks computed from the
    file's PCM; None unless the file is a 16-bit stereo WAV the job reads at its own rate,
    whose header gives its length (then the job decodes and computes as usual)."""
    if not parts(audio):
        return None

    def found(info: AudioInfo) -> tuple[FrameTracks, QualityTally] | None:
        rate = info.sample_rate_hz
        shape = geometry(rate, params)
        if (
            shape is None
            or (info.codec, info.channels) != ("pcm_s16le", 2)
            or info.native_rate_hz != rate
        ):
            return None
        block_len, context = shape
        offset, size = wav_data(audio)
        if size is None or size != audio.stat().st_size - offset or size % 4 or not size:
            return None
        n_samples = size // 4
        blocks = []
        with open(audio, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as pcm:
            for index in range(-(-n_samples // block_len)):
                start, stop, left = _region(index, block_len, context, n_samples)
                raw = pcm[offset + 4 * start : offset + 4 * stop]
                kept = load_block(audio, index, params, checksum=zlib.crc32(raw))
                length = min(block_len, n_samples - index * block_len)
                found = kept or _block_stage1(raw, rate, params, index, block_len, left, length)
                blocks.append(found)
        return joined(blocks)

    return found


def joined(blocks: Sequence[tuple[BlockTracks, QualityTally]]) -> tuple[FrameTracks, QualityTally]:
    """Consecutive blocks' tracks and tallies as those of the call they make."""
    tracks = FrameTracks(
        *[
            np.concatenate([np.stack([b[0][i], b[1][i]]) for b, _ in blocks], axis=-1)
            for i in range(len(track_shapes()))
        ]
    )
    tally = QualityTally()
    for _, block_tally in blocks:
        tally.merge(block_tally)
    return tracks, tally


def load_block(
    audio: Path, index: int, params: AnalysisParams, *, checksum: int | None = None
) -> tuple[BlockTracks, QualityTally] | None:
    """Both channels' tracks of block ``index`` kept for ``audio`` and the quality tally of
    its samples, if computed with ``params`` (and from PCM of that CRC-32 ``checksum``, when
    given); None otherwise."""
    try:
        with np.load(block_path(audio, index)) as kept:
            if str(kept["key"]) != _key(params):
                return None
            if checksum is not None and int(kept["checksum"]) != checksum:
                return None
            rows = kept["tracks"]
            counts = {f.name: kept[f"tally_{f.name}"] for f in fields(QualityTally)}
            # 0-d arrays back to the scalars the tally holds
            tally = QualityTally(**{k: v.item() if v.ndim == 0 else v for k, v in counts.items()})
            return [unstack_tracks(rows[c]) for c in (0, 1)], tally
    except (OSError, KeyError, ValueError):  # missing or unreadable: computed again
        return None


def _key(params: AnalysisParams) -> str:
    """What the tracks depend on besides the audio (its rate changes the checksum)."""
    return f"{ANALYSIS_VERSION}|{params.fmin_hz!r}|{params.fmax_hz!r}|{params.block_s!r}"
