"""StatsRecorder: lookups by request id see exactly the requests still in the window."""

from __future__ import annotations

from ttspilot.server.stats import RequestTiming, StatsRecorder


def test_find_returns_the_newest_request_with_that_id_while_it_is_in_the_window():
    stats = StatsRecorder(10)
    finished = []
    for number in range(25):
        timing = RequestTiming(f"r{number % 12}", "/inference_sft", number)
        stats.finish(timing, "ok")
        finished.append(timing)
    assert stats.find("r0") is finished[24]  # r0 came back: the newer one wins
    assert stats.find("r3") is finished[15]
    assert stats.find("r1") is None and stats.find("r2") is None  # their last finish (13, 14) left the window
    assert stats.summary()["requests_total"] == 25


def test_a_running_request_is_found_until_it_finishes_and_a_dropped_one_is_forgotten():
    stats = StatsRecorder(10)
    running = RequestTiming("live", "/inference_sft", 100, stream=True, segments=3)
    stats.begin(running)
    running.segments_done = 1
    assert stats.find("live") is running and stats.find("live").as_dict()["outcome"] == "running"
    stats.finish(running, "ok")
    assert stats.find("live") is running and running.as_dict()["segments_done"] == 1
    stats.begin(RequestTiming("dropped", "/inference_sft", 10))  # admitted, never ran, nothing holds it
    assert stats.find("dropped") is None
