"""A short soak in CI: bounded closed-loop load, no 5xx, RSS steady (the 10-minute run is in OPTIMIZATION.md)."""

from __future__ import annotations

import pytest

from ttspilot.bench.soak import soak
from ttspilot.bench.texts import ENGLISH

pytestmark = pytest.mark.integration


def test_short_soak_has_no_server_errors_and_steady_memory():
    report = soak(clients=4, duration_s=8, stream=True, text=ENGLISH["medium"], server_args=["--max_queue", "3"])
    assert report.server_errors == 0
    assert report.load["requests"] >= 4
    assert set(report.load["error_kinds"]) <= {"HTTP 503"}
    assert report.rss_growth < 0.10, (report.rss_start_mb, report.rss_end_mb)
    assert report.load["first_audio_p50_s"] is not None
