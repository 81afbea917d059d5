"""Earliest-deadline-first dispatch of engine calls onto the pooled sessions.

A streaming listener can wait as long as the audio it already holds lasts; a new request's
first segment cannot wait at all. So every queued call carries a deadline that is read when a
worker becomes free (a stream's deadline moves as its audio is sent) and the free worker takes
the earliest; equal deadlines keep arrival order. `fifo` runs calls in arrival order, the
behaviour before deadlines, for comparison. See docs/architecture.md, "Scheduling".
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, Literal

log = logging.getLogger(__name__)

Policy = Literal["deadline", "fifo"]
Deadline = Callable[[], float]  # perf_counter seconds at which the call's audio is needed
IDLE_CHECK_S = 0.5  # how often an idle worker looks whether the interpreter is exiting


@dataclass
class CallCost:
    """Seconds of model time per character, a running average over finished calls.

    A segment must start early enough that its audio is made before its listener runs dry, so
    its deadline is a start-by time: when the audio runs out, less what the call will take."""

    def __init__(self, weight: float = 0.2):
        self.weight = weight
        self.per_char = 0.0  # unknown until the first call ends

    def observe(self, characters: int, seconds: float) -> None:
        if characters <= 0:
            return
        sample = seconds / characters
        self.per_char = sample if not self.per_char else (1 - self.weight) * self.per_char + self.weight * sample

    def seconds(self, characters: int) -> float:
        return self.per_char * characters


@dataclass
class QueuedCall:
    sequence: int
    deadline: Deadline
    run: Callable[[], Any]
    future: Future[Any] = field(default_factory=Future)


class CallQueue:
    """The choice of what runs next; not thread-safe (the scheduler holds its lock around it)."""

    def __init__(self, policy: Policy):
        if policy not in ("deadline", "fifo"):
            raise ValueError(f"unknown scheduling policy {policy!r}: choose deadline or fifo")
        self.policy = policy
        self._calls: list[QueuedCall] = []
        self._numbers = itertools.count()

    def push(self, run: Callable[[], Any], deadline: Deadline) -> QueuedCall:
        call = QueuedCall(next(self._numbers), deadline, run)
        self._calls.append(call)
        return call

    def pop(self) -> QueuedCall:
        """The earliest deadline (a linear scan: the queue holds at most a few calls per admitted request)."""
        if self.policy == "fifo":
            chosen = self._calls[0]
        else:
            chosen = min(self._calls, key=lambda call: (call.deadline(), call.sequence))
        self._calls.remove(chosen)
        return chosen

    def clear(self) -> list[QueuedCall]:
        """Every queued call, removed."""
        calls, self._calls = self._calls, []
        return calls

    def __len__(self) -> int:
        return len(self._calls)


class SegmentScheduler(Executor):
    """`workers` threads (one per pooled session) that each take the most urgent queued call.

    An `Executor`, so `loop.run_in_executor` works; plain `submit` calls are due at once, which
    puts warm-up and voice registration in line with new requests."""

    def __init__(self, workers: int, policy: Policy = "deadline", clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.dispatched = 0  # calls handed to a worker so far
        self._queue = CallQueue(policy)
        self._ready = threading.Condition()
        self._closed = False
        # Not daemons: a call still running when the interpreter exits must end before the runtime it uses is torn
        # down (ONNX Runtime aborts the process otherwise). A hung call is server/cli.leave_running_calls' business.
        self._workers = [threading.Thread(target=self._work, name=f"synth_{n}") for n in range(workers)]
        for worker in self._workers:
            worker.start()

    @property
    def policy(self) -> Policy:
        return self._queue.policy

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        now = self.clock()
        return self.submit_by(lambda: now, fn, *args, **kwargs)

    def submit_by(self, deadline: Deadline, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Queue `fn(*args, **kwargs)` to run when it is the most urgent call."""
        with self._ready:
            if self._closed:
                raise RuntimeError("the scheduler is shut down")
            call = self._queue.push(lambda: fn(*args, **kwargs), deadline)
            self._ready.notify()
        return call.future

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    self._ready.wait(IDLE_CHECK_S)
                    if not self._queue and not threading.main_thread().is_alive():  # exiting without a shutdown
                        return
                if self._closed:
                    return
                call = self._queue.pop()
                self.dispatched += 1
            if not call.future.set_running_or_notify_cancel():
                continue
            try:
                result = call.run()
            except BaseException as error:  # handed to whoever awaits the future
                call.future.set_exception(error)
            else:
                call.future.set_result(result)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._ready:
            self._closed = True
            left = self._queue.clear()
            self._ready.notify_all()
        for call in left:
            call.future.cancel()
        if wait:
            for worker in self._workers:
                worker.join()
