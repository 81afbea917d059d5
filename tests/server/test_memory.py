"""Memory over real HTTP: one long request stays bounded, and admission refuses past the budget."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support import assert_speech, decode_wav, start_server, stop_server
from ttspilot.bench.texts import ENGLISH
from ttspilot.config import ServerSettings
from ttspilot.server.segments import cut_plainly, model_segments, request_segments

pytestmark = pytest.mark.integration

PEAK_LIMIT = 2**30  # 1 GiB
# Words without a sentence end: the phonemizer cannot split it, so only the server's cut bounds a model call.
RUN_ON = ("the quick brown fox jumps over the lazy dog and " * 250)[:9999]


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing")


class RssWatch:
    """Samples a process's resident memory and kills it past `limit` bytes, so a regression fails fast, not by OOM."""

    def __init__(self, pid: int, limit: int):
        self.pid, self.limit = pid, limit
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                rss = status_kib(self.pid, "VmRSS") * 1024
            except FileNotFoundError:  # the server is gone; the request shows why
                return
            self.peak = max(self.peak, rss)
            if rss > self.limit:
                os.kill(self.pid, signal.SIGKILL)
                return

    def __enter__(self) -> RssWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def test_plain_cut_prefers_whitespace_and_never_exceeds_the_limit():
    assert cut_plainly("aaa bbb ccc", 7) == ["aaa bbb", "ccc"]
    assert cut_plainly("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]
    pieces = cut_plainly(RUN_ON, 200)
    assert max(map(len, pieces)) <= 200 and " ".join(pieces).split() == RUN_ON.split()


def test_every_segment_fits_one_call_whatever_the_split_flag():
    digits = "1" * 1500  # one protected token: the sentence splitter keeps it whole
    for smart in (True, False):
        for text in (RUN_ON, digits, "Short. " * 300):
            segments = model_segments(text, smart_split=smart, max_length=1000, call_max_chars=200)
            assert segments and max(map(len, segments)) <= 200


@pytest.mark.slow
def test_ten_thousand_characters_unsplit_answer_audio_within_1_gib(tmp_path):
    server = start_server(["--request_timeout", "600"], tmp_path / "server.log")
    try:
        with RssWatch(server.process.pid, PEAK_LIMIT) as watch:
            response = httpx.get(
                server.url + "/inference_sft",
                params={"tts_text": RUN_ON, "enable_smart_split": "false", "speed": "2.0"},
                timeout=600,
            )
        peak = max(watch.peak, status_kib(server.process.pid, "VmHWM") * 1024)
        assert peak < PEAK_LIMIT, f"peak RSS {peak / 2**20:.0f} MB"
        assert response.status_code == 200, response.text
        audio, rate = decode_wav(response.content)
        assert_speech(audio, rate, RUN_ON[: len(RUN_ON) // 2])  # speed 2: half as long
    finally:
        stop_server(server)


def test_admission_refuses_past_the_memory_budget(tmp_path):
    # 200 characters per call x 1.5 MB: one request reserves 300 MB of a 400 MB budget, so a second must wait.
    server = start_server(["--memory_budget_mb", "400"], tmp_path / "server.log")
    long_text = " ".join(f"Sentence {i} of a reading that keeps the worker busy." for i in range(20))
    try:
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(httpx.get, server.url + "/inference_sft", params={"tts_text": long_text}, timeout=120)
            refused = None
            for _ in range(100):
                pipeline = httpx.get(server.url + "/performance_info").json()["pipeline"]
                if pipeline["admitted"]:
                    assert pipeline["memory_budget_mb"] == 400 and 0 < pipeline["memory_reserved_mb"] <= 400
                    refused = httpx.get(server.url + "/inference_sft", params={"tts_text": long_text}, timeout=120)
                    break
                time.sleep(0.05)
            assert first.result().status_code == 200
        assert refused is not None and refused.status_code == 503, refused and refused.text
        assert refused.headers["retry-after"] == "1" and "memory budget" in refused.json()["message"]
        assert httpx.get(server.url + "/inference_sft", params={"tts_text": "Hi."}, timeout=60).status_code == 200
    finally:
        stop_server(server)


def test_streams_get_short_segments_and_whole_responses_long_ones():
    settings = ServerSettings(segment_max_length=80, first_segment_max=30, whole_segment_max_length=160)
    text = ENGLISH["long"]
    streamed = request_segments(text, stream=True, smart_split=True, max_length=None, settings=settings)
    whole = request_segments(text, stream=False, smart_split=True, max_length=None, settings=settings)
    asked = request_segments(text, stream=False, smart_split=True, max_length=40, settings=settings)
    for segments in (streamed, whole, asked):
        assert " ".join(segments).split() == text.split()
    assert len(streamed[0]) <= 30 and max(map(len, streamed)) <= 80
    assert max(map(len, whole)) <= 160 and max(map(len, whole)) > 80 and len(whole) < len(streamed)
    assert max(map(len, asked)) <= 40  # the client's own max_text_length wins
