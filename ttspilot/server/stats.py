"""Per-request timing (RTF, time to first audio, a stream's stall) and percentiles over recent requests."""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ttspilot.playback import Playback


@dataclass
class RequestTiming:
    """One request's clock: started at creation, first audio and finish marked by the pipeline.

    Its audio feeds a real-time `Playback` as it is handed to the client: for a stream that is
    what its listener hears (the stall), for a whole file a pace its segments are scheduled by."""

    request_id: str
    route: str
    characters: int
    stream: bool = False
    segments: int = 0
    segments_done: int = 0  # segments whose audio has all been handed to the client
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    audio_seconds: float = 0.0
    outcome: str = "running"
    playback: Playback = field(default_factory=Playback)
    first_call_wait: float | None = None  # seconds the first segment waited for a session
    calls_ahead: int | None = None  # other requests' calls dispatched while it waited
    release: Callable[[], Any] = field(default=lambda: None, repr=False)  # frees the admission slot, once

    def add_audio(self, seconds: float, now: float | None = None) -> None:
        self.playback.feed(time.perf_counter() if now is None else now, seconds)
        self.audio_seconds += seconds

    @property
    def first_audio(self) -> float | None:
        return self.playback.started

    @property
    def stall_seconds(self) -> float | None:
        """Silence a real-time listener heard after the first audio; streams only."""
        return self.playback.stall_seconds if self.stream and self.first_audio is not None else None

    @property
    def processing_seconds(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    @property
    def time_to_first_audio(self) -> float | None:
        return None if self.first_audio is None else self.first_audio - self.started

    @property
    def rtf(self) -> float | None:
        return self.processing_seconds / self.audio_seconds if self.audio_seconds > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "route": self.route,
            "characters": self.characters,
            "segments": self.segments,
            "segments_done": self.segments_done,
            "outcome": self.outcome,
            "processing_s": round(self.processing_seconds, 4),
            "audio_s": round(self.audio_seconds, 4),
            "rtf": None if self.rtf is None else round(self.rtf, 4),
            "time_to_first_audio_s": _rounded(self.time_to_first_audio),
            "stream": self.stream,
            "stall_s": _rounded(self.stall_seconds),
            "first_call_wait_s": _rounded(self.first_call_wait),
            "calls_ahead": self.calls_ahead,
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def percentiles(values: list[float]) -> dict[str, float] | None:
    """p50/p90/p95/p99 (rounded to 0.1 ms) and the count; None for no values. Shared by /performance_info and bench."""
    if not values:
        return None
    p50, p90, p95, p99 = np.percentile(values, [50, 90, 95, 99])
    return {"p50": round(float(p50), 4), "p90": round(float(p90), 4), "p95": round(float(p95), 4),
            "p99": round(float(p99), 4), "count": len(values)}


class StatsRecorder:
    """Keeps the last `window` finished requests and the running ones; thread-safe because workers finish requests too.

    Running requests are held weakly: one admitted but dropped before its audio began never finishes, and
    vanishes with its timing, so the running set stays bounded by admission."""

    def __init__(self, window: int = 1000):
        self._finished: deque[RequestTiming] = deque(maxlen=window)
        self._by_id: dict[str, RequestTiming] = {}  # the newest finished request per id, for the access log's lookup
        self._running: weakref.WeakValueDictionary[str, RequestTiming] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()
        self.started_at = time.time()
        self.total_requests = 0
        self.listeners: list[Callable[[RequestTiming], None]] = []

    def begin(self, timing: RequestTiming) -> None:
        """Make an admitted request findable while it runs (the web page follows a stream's segments)."""
        with self._lock:
            self._running[timing.request_id] = timing

    def finish(self, timing: RequestTiming, outcome: str) -> None:
        timing.finished = time.perf_counter()
        timing.outcome = outcome
        with self._lock:
            if self._running.get(timing.request_id) is timing:
                del self._running[timing.request_id]
            if len(self._finished) == self._finished.maxlen:
                oldest = self._finished[0]
                if self._by_id.get(oldest.request_id) is oldest:
                    del self._by_id[oldest.request_id]
            self._finished.append(timing)
            self._by_id[timing.request_id] = timing
            self.total_requests += 1
        for listener in self.listeners:
            listener(timing)

    def find(self, request_id: str) -> RequestTiming | None:
        """The running request with this id, else the newest finished one still in the window."""
        with self._lock:
            return self._running.get(request_id) or self._by_id.get(request_id)

    def summary(self, recent: int = 20) -> dict[str, Any]:
        with self._lock:
            done = [t for t in self._finished if t.outcome == "ok"]
            stalls = [t.stall_seconds for t in done if t.stall_seconds is not None]
            last = [t.as_dict() for t in list(self._finished)[-recent:]]
        return {
            "uptime_s": round(time.time() - self.started_at, 1),
            "requests_total": self.total_requests,
            "rtf": percentiles([t.rtf for t in done if t.rtf is not None]),
            "time_to_first_audio_s": percentiles([t.time_to_first_audio for t in done if t.time_to_first_audio is not None]),
            "stream_stall_s": percentiles(stalls),
            "streams_stalled": sum(stall > 0 for stall in stalls),
            "recent": last,
        }
