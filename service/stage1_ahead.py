"""Stage 1 of a live stream's finished minutes, computed while the call goes on.

A streamed call's audio is spooled to a WAV file. Each time a whole analysis block (the
pipeline's ``block_s``) and its right context are in it, :func:`compute_block` (in an
analysis worker process) reads that block from the file, computes its stage-1 tracks
exactly as the batch analysis would (``dsp.pipeline.block_tracks``) and writes them next
to the WAV (``<wav name>.stage1-<index>.npz``). The stream's analysis job then finds them
(:func:`known_blocks`) and computes only the rest: the report of a long call is ready
soon after the stop, and equal to the batch report of the same audio, because a block's
tracks are used only when the checksum of the audio they came from matches the block the
job decoded (otherwise it is computed again).
"""

from __future__ import annotations

import glob
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dsp.frames import hop_samples
from dsp.io import DEFAULT_MAX_RATE_HZ
from dsp.params import AnalysisParams
from dsp.pipeline import (
    ANALYSIS_VERSION,
    KnownBlocks,
    QualityTally,
    block_checksum,
    block_tracks,
    context_samples,
    stack_tracks,
    unstack_tracks,
)

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


def wav_data_offset(path: Path) -> int:
    """Byte offset of the samples of a PCM WAV file (its ``data`` chunk)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    at = head.find(b"data", 12)
    if head[:4] != b"RIFF" or at < 0:
        raise ValueError(f"{path.name} is not a RIFF WAV file with a data chunk")
    return at + 8


def pcm_to_float(raw: bytes) -> npt.NDArray[np.float32]:
    """Interleaved 16-bit stereo PCM -> (2, n) float32 with the arithmetic dsp.io uses for
    it: the samples the job decodes, bit for bit."""
    out = np.frombuffer(raw, dtype="<i2").reshape(-1, 2).T.astype(np.float32)
    out *= np.float32(1.0 / 32768.0)
    return out


def compute_block(
    wav_path: str, data_offset: int, sample_rate_hz: int, index: int, params: AnalysisParams
) -> bool:
    """Compute block ``index`` of a 16-bit stereo WAV being written and keep its tracks next
    to it; False when the file does not hold the block and its right context yet."""
    shape = geometry(sample_rate_hz, params)
    if shape is None:
        return False
    block_len, context = shape
    left = context if index else 0
    start, stop = index * block_len - left, (index + 1) * block_len + context
    with open(wav_path, "rb") as f:
        f.seek(data_offset + 4 * start)
        raw = f.read(4 * (stop - start))
    if len(raw) < 4 * (stop - start):
        return False
    padded = pcm_to_float(raw)
    hop = hop_samples(sample_rate_hz)
    n_keep = block_len // hop
    tracks = block_tracks(
        padded, sample_rate_hz, params, first=left // hop, n_keep=n_keep, call_frame=index * n_keep
    )
    tally = QualityTally()
    tally.add(padded[:, left : left + block_len], sample_rate_hz)
    target = block_path(Path(wav_path), index)
    partial = target.with_name(target.name + ".part")
    arrays: dict[str, Any] = {f"tally_{k}": np.asarray(v) for k, v in vars(tally).items()}
    arrays["tracks"] = np.stack([stack_tracks(channel) for channel in tracks])
    arrays["checksum"] = np.int64(block_checksum(padded))
    arrays["key"] = np.array(_key(params))
    with open(partial, "wb") as f:
        np.savez(f, **arrays)
    os.replace(partial, target)
    return True


def known_blocks(audio: Path, params: AnalysisParams) -> KnownBlocks | None:
    """The lookup :func:`dsp.pipeline.frame_tracks` takes for the blocks kept for
    ``audio`` (None when there are none)."""
    if not parts(audio):
        return None

    def known(
        index: int, padded: npt.NDArray[np.float32]
    ) -> list[tuple[npt.NDArray[np.float32], ...]] | None:
        kept = load_block(audio, index, params, checksum=block_checksum(padded))
        return None if kept is None else kept[0]

    return known


def load_block(
    audio: Path, index: int, params: AnalysisParams, *, checksum: int | None = None
) -> tuple[list[tuple[npt.NDArray[np.float32], ...]], QualityTally] | None:
    """Both channels' tracks of block ``index`` kept for ``audio`` and the quality tally of
    its samples, if computed with ``params`` (and from audio of that ``checksum``, when
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
