"""One real benchmark run of the cpu tier (fresh child process, tiny repeat count) and of its pool shapes (1 s of
load each), shared by the bench tests.

XDG_CACHE_HOME points at a temporary folder, so the tuning profile and caches never touch the user's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import REPO


@dataclass(frozen=True)
class CpuRun:
    stdout: str
    stderr: str  # piped, as when an operator logs the run to a file
    output_dir: Path
    env: dict[str, str]  # with XDG_CACHE_HOME set, for later commands that must find the same profile

    @property
    def results(self) -> dict:
        return json.loads((self.output_dir / "results.json").read_text())


@pytest.fixture(scope="session")
def cpu_run(tmp_path_factory: pytest.TempPathFactory) -> CpuRun:
    root = tmp_path_factory.mktemp("bench")
    env = {**os.environ, "XDG_CACHE_HOME": str(root / "cache")}
    output_dir = root / "out"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmark_performance.py"), "--tier", "cpu", "--quick", "--repeats", "1",
         "--concurrency", "1", "--shape_seconds", "1", "--output_dir", str(output_dir)],
        check=False, capture_output=True, text=True, timeout=180, cwd=REPO, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return CpuRun(result.stdout, result.stderr, output_dir, env)
