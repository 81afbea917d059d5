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
