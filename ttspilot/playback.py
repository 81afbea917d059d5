"""A real-time listener's buffer: when it runs dry and how long it was silent after first audio.

The server schedules by it (a stream's next segment is due when its listener's buffer runs
dry) and reports its stall; the load tool runs the same model on the bytes a client receives,
so both sides count stall the same way (docs/architecture.md, "Scheduling").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Playback:
    """Audio fed at wall-clock times, played at real time from the first chunk on, without a jitter buffer."""

    started: float | None = None  # when the first audio arrived
    runs_dry: float | None = None  # when the audio fed so far ends playing
    stall_seconds: float = 0.0  # silence after the first audio, waiting for the next chunk
    stalls: int = 0  # how many times playback ran dry

    def feed(self, now: float, seconds: float) -> None:
        """`seconds` of audio arrived at `now`."""
        if self.started is None or self.runs_dry is None:
            self.started = self.runs_dry = now
        elif now > self.runs_dry:
            self.stall_seconds += now - self.runs_dry
            self.stalls += 1
            self.runs_dry = now
        self.runs_dry += seconds
