import io

import numpy as np
import pytest
import soundfile

from ttspilot.audio import SUPPORTED_SAMPLE_RATES, Resampler, pcm_bytes, streaming_wav_header, to_int16


def tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_to_int16_clips_and_silences_nan():
    out = to_int16(np.array([0.0, 1.0, -1.0, 2.0, -3.0, np.nan, np.inf], dtype=np.float32))
    assert out.dtype == np.dtype("<i2")
    assert out.tolist() == [0, 32767, -32767, 32767, -32767, 0, 32767]


def test_streaming_header_then_pcm_decodes():
    audio = tone(0.25, 16000)
    body = streaming_wav_header(16000) + pcm_bytes(audio)
    assert len(streaming_wav_header(16000)) == 44
    decoded, rate = soundfile.read(io.BytesIO(body), dtype="float32")
    assert rate == 16000 and len(decoded) == len(audio)


@pytest.mark.parametrize("out_rate", SUPPORTED_SAMPLE_RATES)
def test_resampler_keeps_duration_across_chunks(out_rate):
    audio = tone(1.0, 22050)
    resampler = Resampler(22050, out_rate)
    parts = [resampler.process(chunk) for chunk in np.array_split(audio, 7)]
    parts.append(resampler.process(np.zeros(0, dtype=np.float32), last=True))
    out = np.concatenate(parts)
    assert abs(len(out) - out_rate) <= 2
    assert out.dtype == np.float32
    middle = out[out_rate // 4 : 3 * out_rate // 4]
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_resampler_same_rate_is_identity_across_chunks():
    audio = tone(0.1, 22050)
    resampler = Resampler(22050, 22050)
    parts = [resampler.process(chunk.astype(np.float64)) for chunk in np.array_split(audio, 3)]
    parts.append(resampler.process(np.zeros(0, dtype=np.float32), last=True))
    assert all(part.dtype == np.float32 for part in parts)
    assert np.array_equal(np.concatenate(parts), audio)
