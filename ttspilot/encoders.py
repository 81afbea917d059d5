"""Compressed and raw audio encoders for responses, whole and streamed.

libsndfile (through soundfile) encodes WAV, FLAC, MP3 and Ogg Opus; AAC (ADTS) uses
PyAV when it is installed (`pip install av`). A streamed encoder emits bytes as
libsndfile writes them; the few header bytes libsndfile rewrites at close (FLAC's
total length, MP3's info frame) stay as first sent, which players accept for streams.
A whole file is written in one go, so its header states the exact length.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import soundfile

from ttspilot.audio import pcm_bytes, streaming_wav_header, to_int16

MEDIA_TYPES: dict[str, str] = {
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "opus": "audio/ogg",
    "aac": "audio/aac",
}
FORMATS: tuple[str, ...] = tuple(MEDIA_TYPES)
AUDIO_RESPONSE: dict[int | str, dict] = {
    200: {
        "description": "audio in the requested format",
        "content": {media: {"schema": {"type": "string", "format": "binary"}} for media in sorted(set(MEDIA_TYPES.values()))},
    }
}
_SNDFILE = {"flac": ("FLAC", "PCM_16"), "mp3": ("MP3", "MPEG_LAYER_III"), "opus": ("OGG", "OPUS")}
_WHOLE_SNDFILE = {"wav": ("WAV", "PCM_16"), **_SNDFILE}
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


class FormatUnavailable(Exception):
    """The format needs an optional library that is not installed."""


def fit_rate(audio_format: str, sample_rate: int) -> int:
    """The rate the format can carry nearest to the one asked for (Opus knows five rates)."""
    if audio_format == "opus" and sample_rate not in _OPUS_RATES:
        return 48000
    return sample_rate


def check_available(audio_format: str) -> None:
    if audio_format == "aac":
        try:
            import av  # noqa: F401
        except ImportError as error:
            raise FormatUnavailable("aac needs PyAV on the server: pip install av") from error


class _Tap(io.RawIOBase):
    """A write-only file that hands out what was appended since the last call."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._pos = 0
        self._sent = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._data[self._pos : self._pos + len(data)] = data
        self._pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = (offset, self._pos + offset, len(self._data) + offset)[whence]
        return self._pos

    def tell(self) -> int:
        return self._pos

    def take(self) -> bytes:
        new = bytes(self._data[self._sent :])
        self._sent = len(self._data)
        return new


class StreamEncoder:
    """Encode a stream chunk by chunk: `start()`, `encode(chunk)` many times, then `finish()`."""

    def __init__(self, audio_format: str, sample_rate: int):
        check_available(audio_format)
        self.format = audio_format
        self.sample_rate = sample_rate
        self._tap = _Tap()
        self._writer: soundfile.SoundFile | None = None
        self._aac = None
        if audio_format in _SNDFILE:
            container, subtype = _SNDFILE[audio_format]
            self._writer = soundfile.SoundFile(self._tap, "w", sample_rate, 1, format=container, subtype=subtype)
        elif audio_format == "aac":
            self._aac = _AacWriter(self._tap, sample_rate)

    def start(self) -> bytes:
        return streaming_wav_header(self.sample_rate) if self.format == "wav" else self._tap.take()

    def encode(self, audio: np.ndarray) -> bytes:
        if self._writer is not None:
            self._writer.write(to_int16(audio))
            return self._tap.take()
        if self._aac is not None:
            self._aac.write(audio)
            return self._tap.take()
        return pcm_bytes(audio)

    def finish(self) -> bytes:
        if self._writer is not None:
            self._writer.close()
        if self._aac is not None:
            self._aac.close()
        return self._tap.take()


class WholeEncoder:
    """Encode a whole file chunk by chunk as the audio arrives, so a long answer is held once, encoded.

    libsndfile rewrites the header of a seekable file at close, so the result states its real
    length (WAV sizes, FLAC total samples, MP3 info frame); AAC and raw PCM have no length to state.
    """

    def __init__(self, audio_format: str, sample_rate: int):
        self._file: soundfile.SoundFile | None = None
        self._stream: StreamEncoder | None = None
        if audio_format in _WHOLE_SNDFILE:
            container, subtype = _WHOLE_SNDFILE[audio_format]
            self._buffer = io.BytesIO()
            self._file = soundfile.SoundFile(self._buffer, "w", sample_rate, 1, format=container, subtype=subtype)
        else:
            self._stream = StreamEncoder(audio_format, sample_rate)
            self._bytes = bytearray(self._stream.start())

    def write(self, audio: np.ndarray) -> None:
        if self._file is not None:
            self._file.write(to_int16(audio))
        elif self._stream is not None:
            self._bytes += self._stream.encode(audio)

    def finish(self) -> bytes:
        if self._file is not None:
            self._file.close()
            return self._buffer.getvalue()
        assert self._stream is not None
        return bytes(self._bytes + self._stream.finish())


class _AacWriter:
    """AAC in ADTS frames through PyAV, a format that can be cut and played while it arrives."""

    def __init__(self, sink: io.RawIOBase, sample_rate: int):
        import av

        self._av = av
        self._container = av.open(sink, mode="w", format="adts")
        self._stream = self._container.add_stream("aac", rate=sample_rate, layout="mono")
        self._rate = sample_rate

    def write(self, audio: np.ndarray) -> None:
        frame = self._av.AudioFrame.from_ndarray(to_int16(audio).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self._rate
        self._mux(lambda: self._stream.encode(frame))

    def close(self) -> None:
        self._mux(lambda: self._stream.encode(None))
        self._container.close()

    def _mux(self, encode: Callable[[], list]) -> None:
        for packet in encode():
            self._container.mux(packet)
