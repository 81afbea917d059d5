"""Both launchers with real child processes on loopback: plans, fallback, failures, restarts, signals."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from tests.launcher.launchers import planned_here, speaks
from tests.launcher.voices import write_broken_voice, write_silent_voice

pytestmark = pytest.mark.integration


def test_optimized_comes_up_and_says_why(launch):
    profile, tier_plan = planned_here()
    launcher = launch("start_optimized_server.py")
    tier = launcher.wait_for(r"tier (\w+): ready in")[0]
    log = launcher.log()
    assert tier in [candidate.tier for candidate in tier_plan.candidates]
    if not profile.gpus:
        assert f"hardware: no GPU: {profile.gpu_absent_reason}" in log
    for candidate in tier_plan.skipped:
        assert re.search(rf"plan: .*\b{candidate.tier}\b.*{re.escape(candidate.reason)}", log), candidate
    assert f"plan: try {tier_plan.candidates[0]}" in log
    speaks(launcher.url)
    assert launcher.stop() == 0
    assert "server stopped" in launcher.log()


def test_fallback_starts_no_child_for_a_tier_the_probe_rules_out(launch):
    _, tier_plan = planned_here()
    launcher = launch("start_fallback_server.py")
    tier = launcher.wait_for(r"tier (\w+): ready in")[0]
    log = launcher.log()
    started = re.findall(r"tier (\w+): starting", log)
    if tier_plan.gpu is None:  # no GPU, or no CUDA runtime: every GPU tier is skipped, each with the probe's reason
        for candidate in tier_plan.skipped:
            assert re.search(rf"plan: .*\b{candidate.tier}\b.*{re.escape(candidate.reason)}", log), candidate
        assert started == ["cpu"]
    else:  # a usable GPU: the fallback launcher tries the tiers in order, from the fastest
        assert started[0] == "full"
    assert tier == started[-1]
    speaks(launcher.url)
    assert launcher.stop() == 0


def test_candidate_that_crashes_at_load(launch, tmp_path):
    write_broken_voice(tmp_path / "model")
    launcher = launch("start_fallback_server.py", "--force_config", "cpu", "--model_dir", str(tmp_path / "model"))
    assert launcher.wait_exit() == 1
    log = launcher.log()
    assert re.search(r"tier cpu failed: exited with code 3: .*broken\.onnx failed to load.*; no tier left\n", log)
    assert "trying the next tier" not in log
    assert "no tier came up" in log


def test_candidate_that_never_becomes_ready(launch):
    launcher = launch("start_fallback_server.py", "--force_config", "cpu", "--ready_timeout", "0.5")
    assert launcher.wait_exit() == 1
    assert re.search(r"tier cpu failed: not ready after 0.5 s", launcher.log())


def test_candidate_whose_canary_fails(launch, tmp_path):
    write_silent_voice(tmp_path / "model")
    launcher = launch("start_fallback_server.py", "--force_config", "cpu", "--model_dir", str(tmp_path / "model"))
    assert launcher.wait_exit() == 1
    assert re.search(r"tier cpu failed: canary failed: silent output", launcher.log())


def test_skip_test_starts_even_a_silent_voice(launch, tmp_path):
    write_silent_voice(tmp_path / "model")
    launcher = launch(
        "start_fallback_server.py", "--force_config", "cpu", "--skip_test", "--model_dir", str(tmp_path / "model")
    )
    launcher.wait_for(r"tier cpu: ready in")
    assert launcher.stop() == 0


@pytest.mark.parametrize("script", ["start_optimized_server.py", "start_fallback_server.py"])
def test_missing_model_dir_is_refused_in_one_line_before_any_tier(launch, tmp_path, script):
    launcher = launch(script, "--model_dir", str(tmp_path / "nowhere"))
    assert launcher.wait_exit(30) == 2
    assert launcher.log().strip().endswith(f"--model_dir {tmp_path / 'nowhere'}: no such folder")
    assert len(launcher.log().strip().splitlines()) == 1


def test_server_killed_after_ready_is_restarted_then_abandoned(launch):
    launcher = launch("start_fallback_server.py", "--force_config", "cpu", "--max_restarts", "1")
    first_pid = int(launcher.wait_for(r"tier cpu: ready in .*\(pid (\d+)\)")[0])
    os.kill(first_pid, signal.SIGKILL)
    launcher.wait_for(r"tier cpu: server exited with code -9 after being ready; restarting \(1/1 within 300 s\)")
    pids = launcher.wait_for(r"tier cpu: ready in .*\(pid (\d+)\)", count=2)
    second_pid = int(pids[1])
    assert second_pid != first_pid
    speaks(launcher.url)
    os.kill(second_pid, signal.SIGKILL)
    assert launcher.wait_exit() == 1
    crash = r"\d\d:\d\d:\d\d server exited with code -9 after being ready"
    assert re.search(rf"tier cpu failed: 2 crashes within 300 s: {crash}; {crash}; no tier left", launcher.log())


def test_crash_while_a_restart_starts_counts_as_a_restart(launch):
    launcher = launch("start_fallback_server.py", "--force_config", "cpu")
    first_pid = int(launcher.wait_for(r"tier cpu: ready in .*\(pid (\d+)\)")[0])
    os.kill(first_pid, signal.SIGKILL)
    restarting = launcher.wait_for_new_server({first_pid})
    time.sleep(0.3)
    os.kill(restarting, signal.SIGKILL)
    launcher.wait_for(r"tier cpu: restart failed: exited with code -9; restarting \(2/3 within 300 s\)")
    launcher.wait_for(r"tier cpu: ready in", count=2)
    speaks(launcher.url)
    assert launcher.stop() == 0


def test_crashes_older_than_the_restart_window_are_forgiven(launch):
    launcher = launch("start_fallback_server.py", "--force_config", "cpu", "--max_restarts", "1",
                      "--restart_window", "2")
    first_pid = int(launcher.wait_for(r"tier cpu: ready in .*\(pid (\d+)\)")[0])
    os.kill(first_pid, signal.SIGKILL)
    crashed = time.monotonic()
    second_pid = int(launcher.wait_for(r"tier cpu: ready in .*\(pid (\d+)\)", count=2)[1])
    time.sleep(max(0.0, crashed + 2.5 - time.monotonic()))
    os.kill(second_pid, signal.SIGKILL)
    launcher.wait_for(r"restarting \(1/1 within 2 s\)", count=2)
    launcher.wait_for(r"tier cpu: ready in", count=3)
    speaks(launcher.url)
    assert launcher.stop() == 0
