"""Engine calls in flight and how long each has gone without producing audio (--call_timeout).

A call that stops producing chunks is stuck: a Python thread cannot be interrupted, so the
request waiting on it gets 504, /health turns 503 while the call stays stuck, and only a restart
frees the worker (the launcher does it, docs/architecture.md "Launcher"). Time queued behind
other calls does not count: a call is watched from the moment a worker starts it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(eq=False)
class EngineCall:
    """One running engine call; `last_progress` is when it started or last produced a chunk (monotonic)."""

    last_progress: float = field(default_factory=time.monotonic)

    def progressed(self) -> None:
        self.last_progress = time.monotonic()

    def silent_for(self) -> float:
        return time.monotonic() - self.last_progress


class CallWatch:
    def __init__(self, timeout: float):
        self.timeout = timeout
        self._calls: set[EngineCall] = set()
        self._lock = threading.Lock()

    @contextmanager
    def running(self) -> Iterator[EngineCall]:
        """Watch a call for as long as the block runs (forever, for a call that never returns)."""
        call = EngineCall()
        with self._lock:
            self._calls.add(call)
        try:
            yield call
        finally:
            with self._lock:
                self._calls.discard(call)

    def deadline(self, call: EngineCall) -> float:
        """Seconds until `call` counts as stuck (<= 0: it is)."""
        return self.timeout - call.silent_for()

    def in_flight(self) -> int:
        with self._lock:
            return len(self._calls)

    def stuck(self) -> str | None:
        """Why the engine is stuck, for /health; None while every call makes progress."""
        with self._lock:
            silent = max((call.silent_for() for call in self._calls), default=0.0)
            stuck = sum(call.silent_for() > self.timeout for call in self._calls)
        if not stuck:
            return None
        return (f"engine stuck: {stuck} call(s) produced no audio for {silent:.0f} s (--call_timeout "
                f"{self.timeout:g} s); restart the server")

    def timeout_message(self) -> str:
        """What the request waiting on a stuck call is told (504)."""
        return (f"the engine produced no audio for {self.timeout:g} s (--call_timeout); the call is stuck and the "
                "server needs a restart")
