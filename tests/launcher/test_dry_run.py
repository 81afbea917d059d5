"""--dry_run plans for simulated hardware through the real command line."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from tests.launcher.launchers import planned_here
from tests.support import REPO
from ttspilot.engines.cosyvoice.tiny import CONFIGS


def dry_run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(REPO / "start_optimized_server.py"), "--dry_run", *args],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def candidates(output: str) -> list[str]:
    return re.findall(r"^\s+\d+\. (\w+):", output, flags=re.MULTILINE)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("RTX 4060:8:8.9", ["full", "trt_fp16", "jit_fp16", "jit", "fp16", "basic", "cpu"]),
        ("T4:16:7.5", ["full", "trt_fp16", "jit_fp16", "jit", "fp16", "basic", "cpu"]),
        ("GTX 1050:2:6.1", ["jit", "basic", "cpu"]),
    ],
)
def test_dry_run_gives_the_design_tiers(spec, expected):
    output = dry_run("--simulate_gpu", spec)
    assert candidates(output) == expected
    assert re.search(rf"\$ .*fastapi_server\.py --tier {expected[0]} --host 127\.0\.0\.1 --port 9234", output)
    assert "(simulated)" in output
    assert "--device_id 0" in output


def test_dry_run_plans_for_this_machine():
    profile, tier_plan = planned_here()
    output = dry_run()
    assert candidates(output) == [candidate.tier for candidate in tier_plan.candidates]
    first = tier_plan.candidates[0].tier
    assert re.search(rf"\$ .*fastapi_server\.py --tier {first} --host 127\.0\.0\.1 --port 9234", output)
    if not profile.gpus:
        assert f"no GPU: {profile.gpu_absent_reason}" in output


def test_bad_simulated_gpu_is_refused():
    result = subprocess.run(
        [sys.executable, str(REPO / "start_optimized_server.py"), "--dry_run", "--simulate_gpu", "T4"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert result.returncode == 2
    assert "NAME:MEM_GB:CC" in result.stderr


def test_dry_run_plans_cosyvoice_tiers_without_torch(tmp_path):
    """The light install plans CosyVoice: its folder is recognised by file name, and planning never imports torch."""
    model_dir = tmp_path / "CosyVoice2-0.5B"
    model_dir.mkdir()
    shutil.copy(CONFIGS / "cosyvoice2.yaml", model_dir)
    tree = tmp_path / "CosyVoice"
    planning = ("import sys; from ttspilot.launcher.optimized import main; code = main(sys.argv[1:]); "
                "assert 'torch' not in sys.modules, 'planning imported torch'; sys.exit(code)")
    result = subprocess.run(
        [sys.executable, "-c", planning, "--dry_run", "--simulate_gpu", "RTX 4090:24:8.9", "--model_dir",
         str(model_dir), "--cosyvoice_root", str(tree), "--call_timeout", "30"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert candidates(output) == ["full", "trt_fp16", "jit_fp16", "jit", "fp16", "basic", "cpu"]
    commands = re.findall(r"^\s+\$ (.*)$", output, flags=re.MULTILINE)
    assert len(commands) == 7
    for command in commands:
        assert f"--cosyvoice_root {tree} --call_timeout 30 --model_dir {model_dir}" in command
    assert "--tier full" in commands[0] and "--tier cpu" in commands[-1]
