"""The one synthesis pipeline every route uses.

Text is split into segments no longer than one model call may be; each segment runs as one
job on a bounded worker pool sized by the tier (one worker per pooled session), so requests
interleave segment by segment and one request can keep every session busy. A free worker takes
the segment whose listener runs out of audio first (`scheduler.py`): a new request's first
segment is due at once, a stream's later ones when the audio already sent has played. Chunks reach the
client in order as soon as they exist while the next segments are computed, and a client that
goes away stops its remaining segments within one segment. Admission counts requests and the
memory they may hold, and refuses (503) rather than queueing past either limit. Every call is
watched (`call_watch.py`): one that produces no chunk for --call_timeout fails its request (504).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, closing
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ttspilot.audio import Resampler
from ttspilot.config import ServerSettings
from ttspilot.engines.base import Engine
from ttspilot.server.call_watch import CallWatch, EngineCall
from ttspilot.server.memory_budget import budget_bytes, request_bytes
from ttspilot.server.scheduler import CallCost, Deadline, SegmentScheduler
from ttspilot.server.segments import request_segments
from ttspilot.server.stats import RequestTiming, StatsRecorder

log = logging.getLogger(__name__)

_END = object()
MB = 2**20


class Overloaded(Exception):
    """Admission is full; the client should retry after `retry_after` seconds (503)."""

    def __init__(self, why: str, retry_after: int = 1):
        self.retry_after = retry_after
        super().__init__(f"server busy: {why}; retry after {retry_after} s")


class SynthesisTimeout(Exception):
    """A request ran past --request_timeout, or its engine call went silent past --call_timeout (504)."""


@dataclass(frozen=True)
class SynthesisJob:
    """A validated request: what to say, how, and how to split it."""

    text: str
    voice: str
    sample_rate: int
    speed: float = 1.0
    audio_format: str = "wav"
    stream: bool = False
    segment_max_length: int | None = None
    smart_split: bool = True
    engine_options: dict[str, Any] = field(default_factory=dict)


# A queued segment starts by when its listener runs dry less this many times its own estimated call:
# its own call, and about one call that cannot be interrupted running ahead of it.
START_GUARD = 2.0


def playback_deadline(timing: RequestTiming, segment_seconds: Callable[[], float]) -> Deadline:
    """When the request's next segment must start, read each time a worker becomes free.

    A stream must start its next segment so that the audio is made before its listener has played
    everything sent so far; before its first audio, at once (its arrival). A whole file is paced as
    if it were played from its arrival: it yields to listeners who hold less audio, yet its deadline
    never passes its arrival plus the audio it has made, so it keeps real-time pace and never starves."""
    if timing.stream:
        return lambda: (timing.started if timing.playback.runs_dry is None
                        else timing.playback.runs_dry - START_GUARD * segment_seconds())
    return lambda: timing.started + timing.audio_seconds - START_GUARD * segment_seconds()


class SynthesisPipeline:
    def __init__(self, engine: Engine, settings: ServerSettings, stats: StatsRecorder):
        self.engine = engine
        self.settings = settings
        self.stats = stats
        self.executor = SegmentScheduler(engine.concurrency, settings.scheduling)
        self.call_cost = CallCost()
        self.watch = CallWatch(settings.call_timeout)
        self.queued_segments = 0  # submitted to the pool and not finished; only touched on the event loop
        self.max_admitted = settings.max_queue or 4 * engine.concurrency
        self.admitted = 0
        self.refused = 0  # requests answered 503 because admission was full (the dashboard shows it)
        self.budget = budget_bytes(settings)
        self.reserved = 0  # bytes the admitted requests may hold
        self._admission = threading.Lock()
        largest = request_bytes(
            settings.max_text_length, whole=True, sample_rate=engine.sample_rate, speed=1.0,
            workers=engine.concurrency, settings=settings,
        )
        log.info("memory budget %d MB; a request of %d characters reserves up to %d MB",
                 self.budget // MB, settings.max_text_length, largest // MB)
        log.info("scheduling: %s", "earliest playback deadline first (a new request's first segment before "
                 "audio a listener already holds)" if settings.scheduling == "deadline" else "arrival order (fifo)")

    def segments(self, job: SynthesisJob) -> list[str]:
        """Split for the model at the lengths this kind of response wants (segments.request_segments)."""
        return request_segments(
            job.text, stream=job.stream, smart_split=job.smart_split, max_length=job.segment_max_length,
            settings=self.settings,
        )

    def start(self, job: SynthesisJob, request_id: str, route: str) -> RequestTiming:
        """Admit a request or refuse it at once; the slot frees when its audio ends or it is dropped unstarted.

        A request larger than the whole budget still runs when it is alone: refusing it would be forever.
        """
        need = request_bytes(
            len(job.text), whole=not job.stream, sample_rate=job.sample_rate, speed=job.speed,
            workers=self.engine.concurrency, settings=self.settings,
        )
        with self._admission:
            if self.admitted >= self.max_admitted:
                self.refused += 1
                raise Overloaded(f"{self.admitted} synthesis requests in progress")
            if self.admitted and self.reserved + need > self.budget:
                self.refused += 1
                raise Overloaded(
                    f"this request needs about {need // MB} MB and {self.reserved // MB} MB "
                    f"of the {self.budget // MB} MB memory budget are in use"
                )
            self.admitted += 1
            self.reserved += need
        timing = RequestTiming(request_id, route, len(job.text), stream=job.stream)
        timing.release = weakref.finalize(timing, self._release, need)
        self.stats.begin(timing)
        return timing

    def _release(self, reserved: int) -> None:
        with self._admission:
            self.admitted -= 1
            self.reserved -= reserved

    async def audio(self, job: SynthesisJob, timing: RequestTiming) -> AsyncIterator[np.ndarray]:
        """Yield float32 chunks at the output rate; records timing and finishes it however the stream ends."""
        segments = self.segments(job)
        timing.segments = len(segments)
        loop = asyncio.get_running_loop()
        outputs: list[asyncio.Queue[Any]] = [asyncio.Queue() for _ in segments]
        cancelled = threading.Event()
        # Segments in flight for this request, at most one per pooled session (its look-ahead bound): one
        # request can use every session, and a slow reader holds back only its own later segments.
        ahead = asyncio.Semaphore(self.engine.concurrency)

        def run_segment(index: int, queued: float, dispatched: int) -> None:
            if cancelled.is_set():
                return
            if index == 0:
                timing.first_call_wait = time.perf_counter() - queued
                timing.calls_ahead = self.executor.dispatched - dispatched - 1
            began = time.perf_counter()
            with self.watch.running() as call:
                loop.call_soon_threadsafe(outputs[index].put_nowait, call)  # the consumer's call deadline starts now
                with closing(self.engine.synthesize(segments[index], job.voice, job.speed, stream=job.stream,
                                                    **job.engine_options)) as made:
                    for chunk in made:
                        call.progressed()
                        if cancelled.is_set():
                            return
                        loop.call_soon_threadsafe(outputs[index].put_nowait, chunk)
            self.call_cost.observe(len(segments[index]), time.perf_counter() - began)

        async def compute(index: int) -> None:
            self.queued_segments += 1
            try:
                deadline = playback_deadline(timing, lambda: self.call_cost.seconds(len(segments[index])))
                await asyncio.wrap_future(self.executor.submit_by(
                    deadline, run_segment, index, time.perf_counter(), self.executor.dispatched))
                outputs[index].put_nowait(_END)
            except Exception as error:  # handed to the consumer, which raises it in the request
                outputs[index].put_nowait(error)
            finally:
                self.queued_segments -= 1

        computing: list[asyncio.Task[None]] = []

        async def produce() -> None:
            for index in range(len(segments)):
                await ahead.acquire()
                computing.append(asyncio.create_task(compute(index)))

        producer = asyncio.create_task(produce())
        resampler = Resampler(self.engine.sample_rate, job.sample_rate)
        outcome = "cancelled"
        try:
            for output in outputs:
                call: EngineCall | None = None  # set once a worker starts this segment
                while (item := await self._next(output, timing, call)) is not _END:
                    if isinstance(item, EngineCall):
                        call = item
                        continue
                    if isinstance(item, Exception):
                        outcome = "error"
                        raise item
                    timing.add_audio(len(item) / self.engine.sample_rate)
                    out = resampler.process(item)
                    if out.size:
                        yield out
                timing.segments_done += 1
                ahead.release()
            tail = resampler.process(np.zeros(0, dtype=np.float32), last=True)
            if tail.size:
                yield tail
            outcome = "ok"
        except SynthesisTimeout:
            outcome = "timeout"
            raise
        finally:
            cancelled.set()
            for task in (producer, *computing):
                task.cancel()
            timing.release()
            self.stats.finish(timing, outcome)

    def seconds_left(self, timing: RequestTiming) -> float:
        """Until the request's deadline (--request_timeout after it was admitted)."""
        return max(0.0, timing.started + self.settings.request_timeout - time.perf_counter())

    def past_deadline(self) -> SynthesisTimeout:
        """The error of a request that ran past --request_timeout, the same whichever layer finds it."""
        return SynthesisTimeout(f"synthesis took longer than {self.settings.request_timeout:g} s")

    async def _next(self, chunks: asyncio.Queue[Any], timing: RequestTiming, call: EngineCall | None) -> Any:
        """The segment's next item, within the request's deadline and, once its call runs, the call's."""
        while True:
            wait = self.seconds_left(timing)
            if call is not None:
                wait = min(wait, max(0.0, self.watch.deadline(call)))
            try:
                return await asyncio.wait_for(chunks.get(), timeout=wait)
            except asyncio.TimeoutError:  # not yet the builtin TimeoutError on Python 3.10
                if self.seconds_left(timing) <= 0:
                    raise self.past_deadline() from None
                if call is not None and self.watch.deadline(call) <= 0:
                    log.error("request %s: engine call silent for %.0f s, past --call_timeout %g s; /health reports "
                              "the engine stuck", timing.request_id, call.silent_for(), self.watch.timeout)
                    raise SynthesisTimeout(self.watch.timeout_message()) from None

    async def whole(self, job: SynthesisJob, timing: RequestTiming) -> np.ndarray:
        async with aclosing(self.audio(job, timing)) as chunks:
            parts = [chunk async for chunk in chunks]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
