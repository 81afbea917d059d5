import numpy as np

from ttspilot.canary import CANARY_TEXT, judge_audio

RATE = 22050


def speech_like(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.2 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)


def test_plausible_audio_passes():
    assert judge_audio(speech_like(2.5), RATE).passed


def test_nan_fails():
    audio = speech_like(2.5)
    audio[100] = np.nan
    result = judge_audio(audio, RATE)
    assert not result.passed and "NaN" in result.reason


def test_silence_fails():
    result = judge_audio(np.zeros(int(2.5 * RATE), dtype=np.float32), RATE)
    assert not result.passed and "silent" in result.reason


def test_empty_fails():
    assert not judge_audio(np.zeros(0, dtype=np.float32), RATE).passed


def test_truncated_or_runaway_duration_fails():
    assert "duration" in judge_audio(speech_like(0.2), RATE).reason
    assert "duration" in judge_audio(speech_like(len(CANARY_TEXT) * 0.5), RATE).reason
