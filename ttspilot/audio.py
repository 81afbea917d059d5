"""Audio conversion for responses: float32 -> int16, resampling, raw PCM and the streaming WAV header.

Engines produce float32 mono in [-1, 1]; clients get 16-bit PCM at the rate they ask
for. Resampling keeps state across a request's chunks (soxr stream) so segment joins
do not click. File formats are in `ttspilot.encoders`.
"""

from __future__ import annotations

import struct

import numpy as np
import soxr

SUPPORTED_SAMPLE_RATES: tuple[int, ...] = (8000, 16000, 22050, 24000, 44100, 48000)
_UNKNOWN_LENGTH = 0xFFFFFFFF


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Clip to [-1, 1] and scale; NaN becomes silence rather than noise."""
    clean = np.nan_to_num(np.asarray(audio, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    return (np.clip(clean, -1.0, 1.0) * 32767.0).astype("<i2")


def pcm_bytes(audio: np.ndarray) -> bytes:
    """Headerless PCM s16le, for raw streams."""
    return to_int16(audio).tobytes()


def streaming_wav_header(sample_rate: int) -> bytes:
    """A 44-byte WAV header whose sizes say 'unknown', so players start before the end arrives."""
    byte_rate = sample_rate * 2
    return (
        b"RIFF" + struct.pack("<I", _UNKNOWN_LENGTH) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, byte_rate, 2, 16)
        + b"data" + struct.pack("<I", _UNKNOWN_LENGTH)
    )


class Resampler:
    """Stateful per-request resampler; a pass-through when the rates match."""

    def __init__(self, in_rate: int, out_rate: int):
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32")

    def process(self, audio: np.ndarray, last: bool = False) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float32)
        if self._stream is None:
            return audio
        return self._stream.resample_chunk(audio, last=last)
