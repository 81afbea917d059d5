"""Many listeners on a real server: a new request's first segment is not queued behind other streams' later ones.

Three clients stream the long text without pause; once each holds seconds of audio, newcomers stream a
short text and /performance_info tells how many other calls were dispatched while each newcomer's first
segment waited. Deadline scheduling runs it next (none); arrival order (fifo) runs the queued segments
of the three streams first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.support import RunningServer, finished_record, start_server, stop_server
from ttspilot.bench.texts import ENGLISH

HELD_AUDIO_S = 10.0  # audio each background stream holds before the newcomers arrive
NEWCOMERS = 3
RATE = 22050


@pytest.fixture(params=["deadline", "fifo"])
def server(request, tmp_path) -> Iterator[tuple[str, RunningServer]]:
    running = start_server(["--scheduling", request.param, "--max_queue", "8"], tmp_path / "server.log")
    yield request.param, running
    stop_server(running)


class Listener(threading.Thread):
    """Streams the long text again and again until stopped, counting the audio it received."""

    def __init__(self, url: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.url, self.stop, self.received_s, self.error = url, stop, 0.0, None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=60) as client:
                while not self.stop.is_set():
                    with client.stream("GET", "/inference_sft", params={"tts_text": ENGLISH["long"], "format": "stream"}) as response:
                        response.raise_for_status()
                        for chunk in response.iter_bytes():
                            self.received_s += len(chunk) / 2 / RATE
                            if self.stop.is_set():
                                return
        except Exception as error:  # reported by the test
            self.error = error


def newcomer(url: str) -> dict:
    """One short streamed request; its timing as /performance_info reports it."""
    with httpx.stream("GET", f"{url}/inference_sft", params={"tts_text": ENGLISH["short"], "format": "stream"},
                      timeout=60) as response:
        assert response.status_code == 200
        pcm = np.frombuffer(response.read(), dtype=np.int16)
        request_id = response.headers["x-request-id"]
    assert pcm.size / RATE > 1.0 and np.abs(pcm).max() > 1000  # real speech came back
    return finished_record(url, request_id)


def test_a_new_request_is_not_queued_behind_other_streams_later_segments(server):
    policy, running = server
    stop = threading.Event()
    listeners = [Listener(running.url, stop) for _ in range(3)]
    for listener in listeners:
        listener.start()
    try:
        deadline = time.monotonic() + 60
        while min(listener.received_s for listener in listeners) < HELD_AUDIO_S and time.monotonic() < deadline:
            assert not any(listener.error for listener in listeners), [listener.error for listener in listeners]
            time.sleep(0.05)
        assert min(listener.received_s for listener in listeners) >= HELD_AUDIO_S
        timings = [newcomer(running.url) for _ in range(NEWCOMERS)]
    finally:
        stop.set()
        for listener in listeners:
            listener.join(timeout=30)
    ahead = [timing["calls_ahead"] for timing in timings]
    if policy == "deadline":
        assert ahead == [0] * NEWCOMERS, timings
    else:  # the three streams always have a later segment queued or running
        assert max(ahead) >= 1, timings
    assert all(timing["stall_s"] is not None for timing in timings)

    info = httpx.get(f"{running.url}/performance_info", timeout=10).json()
    assert info["pipeline"]["scheduling"] == policy
    assert info["stats"]["stream_stall_s"]["count"] >= NEWCOMERS
    metrics = httpx.get(f"{running.url}/metrics", timeout=10).text
    counted = next(line for line in metrics.splitlines() if line.startswith("ttspilot_stream_stall_seconds_count"))
    assert float(counted.split()[-1]) >= NEWCOMERS
