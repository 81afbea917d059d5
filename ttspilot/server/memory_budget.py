"""What an admitted request may hold in memory, so admission can refuse before memory runs out.

A request reserves the model calls it can have in flight (one per pooled session, each at
most `call_max_chars` long) and, when its audio is returned whole, that audio until it is
encoded. The estimate is deliberately high: the budget refuses work (503), it never kills it.
"""

from __future__ import annotations

import psutil

from ttspilot.config import ServerSettings

# Audio per character at speed 1 (Piper medium voice): prose 0.058 s, amounts and dates 0.24 s,
# digit groups 0.30 s. The estimate takes the worst, so digits cannot outgrow what was reserved.
AUDIO_SECONDS_PER_CHAR = 0.3
WHOLE_AUDIO_COPIES = 2  # the file being encoded as audio arrives, and the response body made from it
SAMPLE_BYTES = 2  # 16-bit PCM; compressed formats are smaller


def budget_bytes(settings: ServerSettings) -> int:
    """The configured budget, or half the memory free now (the engine is already loaded)."""
    if settings.memory_budget_mb is not None:
        return settings.memory_budget_mb * 2**20
    return psutil.virtual_memory().available // 2


def request_bytes(
    characters: int, *, whole: bool, sample_rate: int, speed: float, workers: int, settings: ServerSettings
) -> int:
    """Memory one request may hold at its peak: its model calls in flight plus, when whole, its audio."""
    in_flight = min(characters, settings.call_max_chars * workers)
    calls = in_flight * settings.call_bytes_per_char
    if not whole:
        return calls
    audio_seconds = characters * AUDIO_SECONDS_PER_CHAR / speed
    return calls + int(audio_seconds * sample_rate * SAMPLE_BYTES * WHOLE_AUDIO_COPIES)
