"""The canary: a short fixed sentence through the real engine, judged before a tier goes live.

FP16 noise, NaN, silence and truncated output all look like "it loaded" to a naive
health check; the canary looks at the audio itself. Shared by the server's readiness,
both launchers and the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CANARY_TEXT = "The quick brown fox jumps over the lazy dog."
RMS_FLOOR = 0.005  # about -46 dBFS: quieter than any real speech
SECONDS_PER_CHARACTER = (0.02, 0.25)  # plausible speaking rates, very slow to very fast


@dataclass(frozen=True)
class CanaryResult:
    passed: bool
    reason: str
    duration_s: float
    rms: float


def judge_audio(audio: np.ndarray, sample_rate: int, text: str = CANARY_TEXT) -> CanaryResult:
    """Pass only finite, audible audio whose length fits the text."""
    audio = np.asarray(audio, dtype=np.float32)
    duration = len(audio) / sample_rate if sample_rate > 0 else 0.0
    if audio.size == 0:
        return CanaryResult(False, "no audio produced", 0.0, 0.0)
    finite = np.isfinite(audio)
    if not finite.all():
        bad = int((~finite).sum())
        return CanaryResult(False, f"{bad} of {audio.size} samples are NaN or infinite", duration, float("nan"))
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    if rms < RMS_FLOOR:
        return CanaryResult(False, f"silent output: RMS {rms:.5f} below {RMS_FLOOR}", duration, rms)
    low, high = (len(text) * s for s in SECONDS_PER_CHARACTER)
    if not low <= duration <= high:
        return CanaryResult(False, f"duration {duration:.2f} s outside {low:.2f}-{high:.2f} s for the text", duration, rms)
    return CanaryResult(True, f"ok: {duration:.2f} s, RMS {rms:.3f}", duration, rms)
