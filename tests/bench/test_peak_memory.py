"""peak_memory: a fresh server per size, one unsplit request, its peak memory read from /proc."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import REPO

pytestmark = pytest.mark.integration


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmHWM from /proc")
def test_reports_status_and_a_peak_above_the_idle_server():
    result = subprocess.run(
        [sys.executable, "-m", "ttspilot.bench.peak_memory", "--chars", "300", "--kill_above_mb", "2048"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    header, _, row = result.stdout.strip().splitlines()
    assert header.split() == ["chars", "status", "seconds", "base_mb", "peak_mb", "after_mb"]
    chars, status, seconds, base, peak, after = row.split()
    assert (chars, status) == ("300", "200") and float(seconds) > 0
    assert int(base) <= int(peak) < 2048 and int(after) <= int(peak)
