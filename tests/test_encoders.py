"""Whole files state their real length; streamed ones decode to the audio they carried."""

from __future__ import annotations

import io
import wave

import av
import numpy as np
import pytest
import soundfile

from ttspilot.encoders import StreamEncoder, WholeEncoder, fit_rate

AAC_FRAME = 1024  # ADTS cannot say how many priming/padding samples it carries: decoders keep up to two frames more


def tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def encode_whole(audio: np.ndarray, rate: int, audio_format: str) -> bytes:
    """As the server writes a whole response: chunk by chunk as the audio arrives."""
    encoder = WholeEncoder(audio_format, rate)
    for chunk in np.array_split(audio, 7):
        encoder.write(chunk)
    return encoder.finish()


def ffmpeg_frames(body: bytes) -> tuple[int, int]:
    """Samples FFmpeg (PyAV) decodes, and the rate it reads."""
    with av.open(io.BytesIO(body)) as container:
        frames = sum(frame.samples for frame in container.decode(audio=0))
        return frames, container.streams.audio[0].rate


def test_whole_wav_header_states_the_length():
    audio = tone(1.37, 24000)
    body = encode_whole(audio, 24000, "wav")
    with wave.open(io.BytesIO(body)) as reader:
        assert reader.getnframes() == len(audio)
        assert reader.getframerate() == 24000
    assert soundfile.info(io.BytesIO(body)).frames == len(audio)
    assert ffmpeg_frames(body) == (len(audio), 24000)


@pytest.mark.parametrize("audio_format", ["flac", "mp3", "opus"])
def test_whole_compressed_file_header_states_the_length(audio_format):
    rate = fit_rate(audio_format, 48000 if audio_format == "opus" else 24000)
    audio = tone(1.37, rate)
    body = encode_whole(audio, rate, audio_format)
    assert soundfile.info(io.BytesIO(body)).frames == len(audio)
    decoded, got_rate = soundfile.read(io.BytesIO(body), dtype="float32")
    assert got_rate == rate and len(decoded) == len(audio)
    assert ffmpeg_frames(body) == (len(audio), rate)


def test_whole_aac_decodes_to_its_duration():
    audio = tone(1.37, 24000)
    frames, rate = ffmpeg_frames(encode_whole(audio, 24000, "aac"))
    assert rate == 24000
    assert len(audio) <= frames <= len(audio) + 2 * AAC_FRAME


@pytest.mark.parametrize("audio_format", ["wav", "flac", "mp3", "opus", "aac"])
def test_stream_encoder_chunks_decode_to_the_audio(audio_format):
    rate = fit_rate(audio_format, 48000 if audio_format == "opus" else 24000)
    audio = tone(1.37, rate)
    encoder = StreamEncoder(audio_format, rate)
    body = encoder.start() + b"".join(encoder.encode(chunk) for chunk in np.array_split(audio, 5)) + encoder.finish()
    decoded = np.concatenate(
        [frame.to_ndarray().reshape(-1) for frame in av.open(io.BytesIO(body)).decode(audio=0)]
    )
    assert len(audio) <= len(decoded) <= len(audio) + 0.1 * rate  # a stream cannot go back to state encoder padding
