"""Segment ordering: earliest playback deadline first, judged on a fake clock; fifo keeps arrival order."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import pytest

from tests.support import REPO
from ttspilot.playback import Playback
from ttspilot.server.pipeline import START_GUARD, playback_deadline
from ttspilot.server.scheduler import CallCost, CallQueue, SegmentScheduler
from ttspilot.server.stats import RequestTiming

CALL_S = 0.2  # what one queued segment is estimated to take


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def stream(name: str, arrived: float, audio_at: list[tuple[float, float]] = ()) -> RequestTiming:
    """A streamed request that arrived at `arrived` and was sent (time, seconds) of audio."""
    timing = RequestTiming(name, "/test", 100, stream=True, started=arrived)
    for now, seconds in audio_at:
        timing.add_audio(seconds, now)
    return timing


def whole(name: str, arrived: float, audio_s: float = 0.0) -> RequestTiming:
    timing = RequestTiming(name, "/test", 100, stream=False, started=arrived)
    if audio_s:
        timing.add_audio(audio_s, arrived + 0.1)
    return timing


def queue_of(*timings: RequestTiming, policy: str = "deadline") -> CallQueue:
    queue = CallQueue(policy)
    for timing in timings:
        queue.push(lambda name=timing.request_id: name, playback_deadline(timing, lambda: CALL_S))
    return queue


def order(queue: CallQueue) -> list[str]:
    return [queue.pop().run() for _ in range(len(queue))]


def test_playback_counts_silence_after_the_first_audio_only():
    playback = Playback()
    playback.feed(10.0, 2.0)  # plays 10-12
    playback.feed(11.0, 1.0)  # in time: plays 12-13
    playback.feed(13.5, 1.0)  # 0.5 s of silence, plays 13.5-14.5
    playback.feed(16.0, 1.0)  # 1.5 s more
    assert playback.started == 10.0 and playback.runs_dry == 17.0
    assert playback.stall_seconds == pytest.approx(2.0) and playback.stalls == 2


def test_a_streams_deadline_is_when_its_listener_runs_dry_less_the_calls_it_waits_for():
    clock = FakeClock()
    fresh = stream("fresh", clock.now)
    assert playback_deadline(fresh, lambda: CALL_S)() == clock.now  # no audio yet: due at its arrival
    playing = stream("playing", clock.now - 2, [(clock.now - 1, 6.0)])  # runs dry at now + 5
    assert playback_deadline(playing, lambda: CALL_S)() == pytest.approx(clock.now + 5 - START_GUARD * CALL_S)
    playing.add_audio(3.0, clock.now)  # the deadline moves as audio is sent
    assert playback_deadline(playing, lambda: CALL_S)() == pytest.approx(clock.now + 8 - START_GUARD * CALL_S)
    paced = whole("whole", clock.now - 1, audio_s=4.0)  # a whole file is paced from its arrival
    assert playback_deadline(paced, lambda: CALL_S)() == pytest.approx(clock.now + 3 - START_GUARD * CALL_S)


def test_a_new_request_goes_before_segments_of_streams_that_hold_audio():
    now = FakeClock().now
    held = [stream(f"held{n}", now - 5, [(now - 4.8, 3.0 + n), (now - 1, 6.0)]) for n in range(3)]
    newcomer = stream("new", now)
    assert order(queue_of(*held, newcomer)) == ["new", "held0", "held1", "held2"]
    assert order(queue_of(*held, newcomer, policy="fifo")) == ["held0", "held1", "held2", "new"]


def test_a_stream_about_to_run_dry_goes_before_a_newcomer_so_it_does_not_stall():
    now = FakeClock().now
    nearly_dry = stream("nearly dry", now - 4, [(now - 3.9, 4.0)])  # runs dry at now + 0.1
    newcomer = stream("new", now)
    assert order(queue_of(newcomer, nearly_dry)) == ["nearly dry", "new"]


def test_equal_deadlines_keep_arrival_order_and_deadlines_are_read_at_dispatch():
    now = FakeClock().now
    first, second = stream("first", now), stream("second", now)
    queue = queue_of(first, second)
    first.add_audio(10.0, now + 0.05)  # first's audio went out while both waited: second is now more urgent
    assert order(queue) == ["second", "first"]
    assert order(queue_of(stream("a", now), stream("b", now))) == ["a", "b"]


def test_a_whole_request_is_not_starved_by_a_stream_of_newcomers():
    clock = FakeClock()
    paced = whole("whole", clock.now, audio_s=1.0)  # due by arrival + 1 s of audio, less its call
    queue = CallQueue("deadline")
    queue.push(lambda: "whole", playback_deadline(paced, lambda: CALL_S))
    served = []
    for _ in range(20):  # a newcomer arrives every 0.1 s and each takes one call
        clock.now += 0.1
        queue.push(lambda: "new", playback_deadline(stream("new", clock.now), lambda: CALL_S))
        served.append(queue.pop().run())
        if served[-1] == "whole":
            break
    assert "whole" in served and len(served) <= 1.0 / 0.1


def test_call_cost_is_a_running_average_per_character():
    cost = CallCost(weight=0.5)
    assert cost.seconds(100) == 0.0
    cost.observe(100, 0.2)
    assert cost.seconds(50) == pytest.approx(0.1)
    cost.observe(100, 0.4)
    assert cost.seconds(100) == pytest.approx(0.3)


def test_the_scheduler_runs_the_earliest_deadline_when_a_worker_frees():
    scheduler = SegmentScheduler(1, "deadline")
    gate = threading.Event()
    ran: list[str] = []
    blocker = scheduler.submit(gate.wait)
    while not blocker.running():  # the others queue behind it, so the worker chooses among all three
        threading.Event().wait(0.01)
    futures = [scheduler.submit_by(lambda due=due: due, ran.append, name)
               for name, due in (("late", 30.0), ("early", 10.0), ("middle", 20.0))]
    gate.set()
    for future in [blocker, *futures]:
        future.result(timeout=5)
    assert ran == ["early", "middle", "late"] and scheduler.dispatched == 4
    scheduler.shutdown()


def test_shutdown_cancels_what_is_queued_and_refuses_more():
    scheduler = SegmentScheduler(1)
    gate = threading.Event()
    running = scheduler.submit(gate.wait)
    while not running.running():
        threading.Event().wait(0.01)
    queued = scheduler.submit(lambda: "never")
    scheduler.shutdown(wait=False)
    assert queued.cancelled()
    gate.set()
    assert running.result(timeout=5) is True
    with pytest.raises(RuntimeError, match="shut down"):
        scheduler.submit(lambda: None)


def test_the_scheduler_is_an_executor_for_the_event_loop():
    scheduler = SegmentScheduler(2)

    async def main() -> int:
        return await asyncio.get_running_loop().run_in_executor(scheduler, sum, [1, 2, 3])

    assert asyncio.run(main()) == 6
    scheduler.shutdown()


def test_an_interpreter_leaving_without_shutdown_lets_the_running_call_end_and_exits(tmp_path):
    """A call torn down mid-run aborts ONNX Runtime's process; idle workers must not keep it alive either."""
    done = tmp_path / "done"
    script = (
        "import pathlib, time\n"
        "from ttspilot.server.scheduler import SegmentScheduler\n"
        "scheduler = SegmentScheduler(2)\n"
        f"scheduler.submit(lambda: (time.sleep(0.5), pathlib.Path({str(done)!r}).write_text('ok')))\n"
    )
    started = time.monotonic()
    finished = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=30, check=False)
    assert finished.returncode == 0 and done.read_text() == "ok"
    assert time.monotonic() - started < 15
