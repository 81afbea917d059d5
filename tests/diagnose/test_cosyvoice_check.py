"""diagnose_gpu.py --cosyvoice_root in the light install: nothing to check is a SKIP, no torch a FAIL with the fix.

With the CosyVoice environment: tests/engines/cosyvoice/test_diagnose_check.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO
from ttspilot.diagnose.cosyvoice_check import check_cosyvoice
from ttspilot.diagnose.result import Status


def diagnose(python: Path | str, *args: str) -> tuple[int, dict]:
    """diagnose_gpu.py --json --check cosyvoice with `python`: exit code and the check's JSON."""
    result = subprocess.run([str(python), str(REPO / "diagnose_gpu.py"), "--json", "--check", "cosyvoice", *args],
                            capture_output=True, text=True, timeout=300, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    (check,) = json.loads(result.stdout)["checks"]
    return result.returncode, check


def test_nothing_to_check_is_a_skip_that_says_how():
    finding = check_cosyvoice(None, engine="piper")
    assert finding.status is Status.SKIP and "--cosyvoice_root" in finding.fix


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="this python has torch")
def test_without_torch_it_fails_with_the_install_command(tmp_path):
    code, check = diagnose(sys.executable, "--cosyvoice_root", str(tmp_path))
    assert code == 1 and check["status"] == "FAIL"
    assert "torch is not importable" in check["detail"]
    assert "requirements-cosyvoice.txt" in check["fix"]
