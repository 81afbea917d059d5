"""The canary: a short fixed sentence through the real engine, judged before a tier goes live.

FP16 noise, NaN, silence, clipping and truncated output all look like "it loaded" to a naive
health check; the canary looks at the audio itself. Shared by the server's readiness,
both launchers and the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

CANARY_TEXT = "The quick brown fox jumps over the lazy dog."
RMS_FLOOR = 0.005  # about -46 dBFS: quieter than any real speech
SECONDS_PER_CHARACTER = (0.02, 0.25)  # plausible speaking rates, very slow to very fast
# Engines clip to [-1, 1], so an overflowing model shows as runs of full-scale samples. 0.999 also catches
# 1.0 after a 16-bit WAV round trip (32767/32768). Peak-normalised speech has a sample or two per sentence
# there: the embedded Piper voice puts 0.002-0.007 % of its samples at full scale.
CLIP_LEVEL = 0.999
CLIP_FRACTION = 0.01

Fault = Literal["empty", "non_finite", "silent", "clipped", "duration"]
# What half precision's overflow and underflow do to audio; the launcher falls back to FP32 on these.
PRECISION_FAULTS: frozenset[Fault] = frozenset({"non_finite", "silent", "clipped"})


@dataclass(frozen=True)
class CanaryResult:
    passed: bool
    reason: str
    duration_s: float
    rms: float
    fault: Fault | None = None  # which check failed; None when passed


def judge_audio(audio: np.ndarray, sample_rate: int, text: str = CANARY_TEXT) -> CanaryResult:
    """Pass only finite, audible, unclipped audio whose length fits the text."""
    audio = np.asarray(audio, dtype=np.float32)
    duration = len(audio) / sample_rate if sample_rate > 0 else 0.0
    if audio.size == 0:
        return CanaryResult(False, "no audio produced", 0.0, 0.0, "empty")
    finite = np.isfinite(audio)
    if not finite.all():
        bad = int((~finite).sum())
        return CanaryResult(False, f"{bad} of {audio.size} samples are NaN or infinite", duration, float("nan"),
                            "non_finite")
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    if rms < RMS_FLOOR:
        return CanaryResult(False, f"silent output: RMS {rms:.5f} below {RMS_FLOOR}", duration, rms, "silent")
    clipped = float(np.mean(np.abs(audio) >= CLIP_LEVEL))
    if clipped > CLIP_FRACTION:
        why = f"clipped output: {clipped:.1%} of samples at full scale (|x| >= {CLIP_LEVEL}), over {CLIP_FRACTION:.0%}"
        return CanaryResult(False, why, duration, rms, "clipped")
    low, high = (len(text) * s for s in SECONDS_PER_CHARACTER)
    if not low <= duration <= high:
        return CanaryResult(False, f"duration {duration:.2f} s outside {low:.2f}-{high:.2f} s for the text", duration,
                            rms, "duration")
    return CanaryResult(True, f"ok: {duration:.2f} s, RMS {rms:.3f}", duration, rms)
