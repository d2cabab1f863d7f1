"""One exception tree for the whole project.

::

    MirrorlineError                 code            meaning
    ├── InputError                                  the caller sent something unusable (4xx)
    │   ├── FileMissing             input.not_found      path does not exist
    │   ├── ParameterError          config.invalid       an analysis parameter is out of range
    │   └── AudioError                                  the audio itself is unusable
    │       ├── AudioEmpty          audio.empty          zero bytes / no samples
    │       ├── AudioUndecodable    audio.undecodable    not audio, or a codec we cannot read
    │       ├── AudioTruncated      audio.truncated      ends before its header says it does
    │       ├── AudioNotStereo      audio.not_stereo     one channel (we need one per party)
    │       ├── AudioTooManyChannels audio.too_many_channels  more than two channels
    │       ├── AudioTooShort       audio.too_short      under the minimum duration
    │       ├── AudioTooLong        audio.too_long       over the maximum duration
    │       ├── AudioBadRate        audio.bad_sample_rate  rate outside 8-192 kHz
    │       └── AudioNonFinite      audio.non_finite     NaN or infinite samples
    │   └── OutputUnwritable        output.unwritable    an output path cannot be written (CLI)
    │   └── VerbalUnavailable       verbal.unavailable   verbal asked for, the recogniser missing
    └── (anything else raised inside dsp is a bug, reported as 500 ``internal``)

Every error carries a stable ``code`` (what clients switch on) and a message that says what
is wrong and what would work. The service maps ``InputError`` subclasses to HTTP statuses in
one place; the CLI prints ``error: <code>: <message>`` and exits with status 2.
"""

from __future__ import annotations


class MirrorlineError(Exception):
    """Base of every error Mirrorline raises on purpose."""

    code: str = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(MirrorlineError):
    """The caller's input cannot be analysed; never a bug in Mirrorline."""

    code = "input.invalid"


class FileMissing(InputError):
    code = "input.not_found"


class ParameterError(InputError):
    code = "config.invalid"


class AudioError(InputError):
    code = "audio.invalid"


class AudioEmpty(AudioError):
    code = "audio.empty"


class AudioUndecodable(AudioError):
    code = "audio.undecodable"


class AudioTruncated(AudioError):
    code = "audio.truncated"


class AudioNotStereo(AudioError):
    code = "audio.not_stereo"


class AudioTooManyChannels(AudioError):
    code = "audio.too_many_channels"


class AudioTooShort(AudioError):
    code = "audio.too_short"


class AudioTooLong(AudioError):
    code = "audio.too_long"


class AudioBadRate(AudioError):
    code = "audio.bad_sample_rate"


class AudioNonFinite(AudioError):
    code = "audio.non_finite"


class OutputUnwritable(InputError):
    code = "output.unwritable"


class VerbalUnavailable(InputError):
    code = "verbal.unavailable"
