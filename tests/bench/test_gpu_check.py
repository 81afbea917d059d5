"""gpu_check end to end on this machine: every step runs or skips for its stated reason, the report is written, and
OPTIMIZATION.md's "not yet run on a GPU" list is what the generator writes from the committed report."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.support import REPO
from ttspilot.bench import gpu_check
from ttspilot.bench.gpu_steps import STEP_NAMES, STEPS, TOTAL_BUDGET_S


def test_the_command_writes_a_report_with_a_status_and_reason_for_every_step(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "ttspilot.bench.gpu_check", "--out", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=TOTAL_BUDGET_S + 60)
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert done.returncode == (1 if report["summary"]["failed"] else 0), done.stdout + done.stderr
    assert [step["name"] for step in report["steps"]] == list(STEP_NAMES)
    assert time.monotonic() - started < TOTAL_BUDGET_S
    facts = gpu_check.gather_facts(None)
    by_name = {step["name"]: step for step in report["steps"]}
    for step in STEPS:
        row = by_name[step.name]
        assert row["status"] in ("passed", "failed", "skipped") and row["reason"], row
        assert row["seconds"] <= step.budget_s + 5, row
        own = step.prerequisite(facts)
        if own is not None:  # a missing prerequisite is the reason given, and nothing was run or measured
            assert (row["status"], row["reason"], row["figures"]) == ("skipped", own, {}), row
        if row["status"] != "passed":
            assert row["figures"] == {}  # only what a step measured is written
        assert f"gpu_check: {step.name}: {row['status'].upper()} in " in done.stdout
    markdown = (tmp_path / "gpu_check.md").read_text()
    for step in report["steps"]:
        assert f"| `{step['name']}` | {step['status']} | " in markdown
    summary = report["summary"]
    assert sum(summary.values()) == len(STEPS)
    assert f"{summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped" in markdown


def test_a_step_past_its_budget_is_killed_and_reported(tmp_path: Path) -> None:
    probe = next(step for step in STEPS if step.name == "probe")
    result = gpu_check._in_child(probe, tmp_path, 0.05, None)
    assert (result.status, result.reason) == ("failed", "did not finish within its budget of 0.05 s (killed)")
    assert result.seconds < 5


def test_the_probe_step_runs_in_its_own_process_and_reports_what_nvml_saw(tmp_path: Path) -> None:
    probe = next(step for step in STEPS if step.name == "probe")
    result = gpu_check._in_child(probe, tmp_path, probe.budget_s, None)
    if result.status == "passed":
        assert result.figures["gpus"] and result.figures["planned_tiers"][-1] == "cpu", result
    else:
        assert result.status == "failed" and result.reason.startswith("NVML sees no GPU: "), result
        assert result.figures == {}


def test_optimization_md_lists_what_the_generator_writes_from_the_last_committed_report() -> None:
    report_path = REPO / "docs" / gpu_check.REPORT_JSON
    expected = gpu_check.not_run_markdown(gpu_check.load_report(report_path), "docs/gpu_check.json")
    assert gpu_check.markdown_block((REPO / "OPTIMIZATION.md").read_text()) == expected


def test_the_generator_lists_only_the_steps_a_gpu_report_did_not_pass(tmp_path: Path) -> None:
    steps = [{"name": step.name, "title": step.title, "status": "passed", "reason": "ok"} for step in STEPS]
    steps[2].update(status="failed", reason="tier jit runs on cpu")
    steps[-1].update(status="skipped", reason="the tensorrt Python package is not installed")
    report = {"created_utc": "2026-12-03T17:00:00+00:00", "gpu": "NVIDIA H200 (compute 9.0, 139.0 GB free)",
              "no_gpu_reason": None, "steps": steps}
    (tmp_path / "gpu_check.json").write_text(json.dumps(report))
    guide = tmp_path / "GUIDE.md"
    guide.write_text(f"# Guide\n\nbefore\n\n{gpu_check.BLOCK_START}\nstale\n{gpu_check.BLOCK_END}\n\nafter\n")
    gpu_check.main(["--markdown-into", str(guide), "--report", str(tmp_path / "gpu_check.json")])
    text = guide.read_text()
    assert text.startswith("# Guide\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    rows = [line for line in gpu_check.markdown_block(text).splitlines() if line.startswith("- ")]
    assert rows == [f"- `{STEPS[2].name}` (failed: tier jit runs on cpu): {STEPS[2].title}",
                    f"- `{STEPS[-1].name}` (skipped: the tensorrt Python package is not installed): {STEPS[-1].title}"]
    assert "NVIDIA H200" in text and "stale" not in text


def test_the_step_budgets_fit_the_ten_minutes() -> None:
    assert sum(step.budget_s for step in STEPS) <= TOTAL_BUDGET_S == 600
