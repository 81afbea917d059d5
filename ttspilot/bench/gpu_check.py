"""One command that proves the GPU paths in under ten minutes and says what it could not try (docs/architecture.md,
"GPU check").

    python -m ttspilot.bench.gpu_check [--cosyvoice_root PATH] [--out docs]
    python -m ttspilot.bench.gpu_check --markdown-into OPTIMIZATION.md    # the "not yet run on a GPU" list

Each step of `gpu_steps.STEPS` runs in its own child process of this python under its time budget (a hung
CUDA call is killed there), or is skipped with the reason its prerequisite is missing. The report is
`gpu_check.json` + `gpu_check.md` in --out; only figures a step measured are written.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ttspilot.bench.gpu_steps import STEPS, TOTAL_BUDGET_S, Facts, Step, StepFailed, StepSkipped, tensorrt_importable

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "docs"
REPORT_JSON = "gpu_check.json"
REPORT_MD = "gpu_check.md"
BLOCK_START = "<!-- gpu-check:start -->"
BLOCK_END = "<!-- gpu-check:end -->"
MIN_STEP_S = 5.0  # less than this left of the total: the step is not started


@dataclass
class StepResult:
    name: str
    title: str
    budget_s: float
    status: str  # passed | failed | skipped
    reason: str
    seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)


def gather_facts(cosyvoice_root: Path | None) -> Facts:
    """The probe and the installed packages, without importing torch or TensorRT."""
    from ttspilot.hardware import probe

    profile = probe()
    gpu = None
    if profile.gpus:
        best = max(profile.gpus, key=lambda g: g.memory_free)
        gpu = f"{best.name} (compute {best.compute_capability_text}, {best.memory_free / 2**30:.1f} GB free)"
    libraries = profile.libraries
    return Facts(gpu=gpu, no_gpu_reason=profile.gpu_absent_reason or "", ort_version=libraries.onnxruntime_version,
                 ort_providers=tuple(libraries.ort_providers), piper=importlib.util.find_spec("piper") is not None,
                 tensorrt=tensorrt_importable(),
                 torch=importlib.util.find_spec("torch") is not None, cosyvoice_root=cosyvoice_root,
                 cosyvoice_importable=importlib.util.find_spec("cosyvoice") is not None)


def run_child(step: Step) -> dict[str, Any]:
    """In the child: the step's work, as {"status", "reason", "figures"}."""
    work = Path(os.environ["TTSPILOT_GPU_CHECK_WORK"])
    try:
        figures = step.run(work)
    except StepSkipped as skip:
        return {"status": "skipped", "reason": str(skip), "figures": {}}
    except StepFailed as failure:
        return {"status": "failed", "reason": str(failure), "figures": {}}
    except Exception as error:  # noqa: BLE001  (whatever the GPU stack raises is the step's finding)
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return {"status": "failed", "reason": f"{type(error).__name__}: {first}", "figures": {}}
    return {"status": "passed", "reason": "ok", "figures": figures}


def _in_child(step: Step, work: Path, budget: float, cosyvoice_root: Path | None) -> StepResult:
    env = {**os.environ, "TTSPILOT_GPU_CHECK_WORK": str(work), "XDG_CACHE_HOME": str(work / "cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    if cosyvoice_root is not None:
        env["TTSPILOT_COSYVOICE_ROOT"] = str(cosyvoice_root)
    result = StepResult(step.name, step.title, step.budget_s, "failed", "")
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "ttspilot.bench.gpu_check", "--child", step.name],
                              capture_output=True, text=True, timeout=budget, env=env, cwd=work)
    except subprocess.TimeoutExpired:
        result.seconds = time.monotonic() - started
        result.reason = f"did not finish within its budget of {budget:g} s (killed)"
        return result
    result.seconds = time.monotonic() - started
    try:
        outcome = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        result.reason = f"the step's process crashed (exit code {done.returncode}): {tail[0][:300]}"
        return result
    result.status, result.reason, result.figures = outcome["status"], outcome["reason"], outcome["figures"]
    return result


def run_steps(facts: Facts, work: Path, cosyvoice_root: Path | None, log=print) -> list[StepResult]:
    """Every step in order: skipped for its reason, or run under min(its budget, what is left of the total)."""
    started = time.monotonic()
    results: dict[str, StepResult] = {}
    for step in STEPS:
        left = TOTAL_BUDGET_S - (time.monotonic() - started)
        missing = [name for name in step.after if results[name].status != "passed"]
        reason = step.prerequisite(facts)  # its own missing prerequisite says the most
        if reason is None and missing:
            reason = f"needs {missing[0]}, which {results[missing[0]].status} (see that step)"
        elif reason is None and left < MIN_STEP_S:
            reason = f"the total budget of {TOTAL_BUDGET_S:.0f} s was spent"
        if reason is not None:
            results[step.name] = StepResult(step.name, step.title, step.budget_s, "skipped", reason)
        else:
            results[step.name] = _in_child(step, work, min(step.budget_s, left), cosyvoice_root)
        result = results[step.name]
        log(f"gpu_check: {step.name}: {result.status.upper()} in {result.seconds:.1f} s: {result.reason}")
    return list(results.values())


# --- the report -----------------------------------------------------------------------------------

def make_report(facts: Facts, results: list[StepResult], seconds: float) -> dict[str, Any]:
    return {"tool": "ttspilot gpu_check", "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "platform": f"{platform.system()} {platform.machine()}",
            "gpu": facts.gpu, "no_gpu_reason": None if facts.gpu else facts.no_gpu_reason,
            "onnxruntime": facts.ort_version, "onnxruntime_providers": list(facts.ort_providers),
            "total_budget_s": TOTAL_BUDGET_S, "seconds": round(seconds, 1),
            "summary": {status: sum(r.status == status for r in results) for status in ("passed", "failed", "skipped")},
            "steps": [{**asdict(r), "seconds": round(r.seconds, 2)} for r in results]}


def report_markdown(report: dict[str, Any]) -> str:
    summary = report["summary"]
    machine = report["gpu"] or f"a machine without a visible GPU ({report['no_gpu_reason']})"
    lines = [f"# GPU check, {report['created_utc']}", "",
             f"`python -m ttspilot.bench.gpu_check` on {machine}; "
             f"Python {report['python']}, {report['platform']}, onnxruntime {report['onnxruntime']} "
             f"({', '.join(report['onnxruntime_providers']) or 'no providers'}).", "",
             f"{summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped in "
             f"{report['seconds']:.0f} s (total budget {report['total_budget_s']:.0f} s).", "",
             "| step | status | seconds / budget | reason |", "|---|---|---|---|"]
    for step in report["steps"]:
        reason = step["reason"].replace("|", "\\|")
        lines.append(f"| `{step['name']}` | {step['status']} | {step['seconds']:.1f} / {step['budget_s']:.0f} "
                     f"| {reason} |")
    measured = [step for step in report["steps"] if step["figures"]]
    if measured:
        lines += ["", "## Measured", ""]
        for step in measured:
            lines += [f"### `{step['name']}`", "", "```json", json.dumps(step["figures"], indent=1), "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / REPORT_JSON, out / REPORT_MD
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(report_markdown(report))
    return json_path, md_path


def not_run_markdown(report: dict[str, Any] | None, source: str) -> str:
    """OPTIMIZATION.md's "not yet run on a GPU" list from the last committed report (None: there is none)."""
    head = [f"Generated from `{source}` by `python -m ttspilot.bench.gpu_check --markdown-into OPTIMIZATION.md`."]
    if report is None:
        head.append(f"No `gpu_check` report is committed (`{source}` is absent), so no step has run on a GPU:")
        rows = [f"- `{step.name}`: {step.title}" for step in STEPS]
    elif not report["gpu"]:
        head.append(f"The last report ({report['created_utc']}) ran without a GPU ({report['no_gpu_reason']}), "
                    "so no step has run on a GPU:")
        rows = [f"- `{step['name']}`: {step['title']}" for step in report["steps"]]
    else:
        unproven = [step for step in report["steps"] if step["status"] != "passed"]
        head.append(f"The last report ({report['created_utc']}, {report['gpu']}): "
                    + ("every step passed." if not unproven else "not yet run, or not passing, on a GPU:"))
        rows = [f"- `{step['name']}` ({step['status']}: {step['reason']}): {step['title']}" for step in unproven]
    return "\n".join([*head, "", *rows]).rstrip() + "\n"


def load_report(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def split_block(text: str) -> tuple[str, str, str]:
    """(before, the generated list, after) of a Markdown file with the list between the markers."""
    before, start, rest = text.partition(BLOCK_START)
    block, end, after = rest.partition(BLOCK_END)
    if not (start and end):
        raise ValueError(f"no {BLOCK_START} ... {BLOCK_END} block")
    return before, block, after


def markdown_block(text: str) -> str:
    """The generated list as it stands between the markers of a Markdown file."""
    return split_block(text)[1].strip("\n") + "\n"


def write_markdown_into(target: Path, report_path: Path) -> None:
    before, _, after = split_block(target.read_text())
    source = os.path.relpath(report_path, target.parent)
    block = not_run_markdown(load_report(report_path), source)
    target.write_text(f"{before}{BLOCK_START}\n{block}{BLOCK_END}{after}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ttspilot.bench.gpu_check", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"report folder (default: {DEFAULT_OUT})")
    parser.add_argument("--cosyvoice_root", type=Path, default=os.environ.get("TTSPILOT_COSYVOICE_ROOT") or None,
                        help="an official CosyVoice checkout for the tiny CosyVoice steps")
    parser.add_argument("--work", type=Path, help="keep the steps' files (models, caches, plans) here")
    parser.add_argument("--markdown-into", dest="markdown_into", type=Path,
                        help="only rewrite this file's 'not yet run on a GPU' list from --report, run nothing")
    parser.add_argument("--report", type=Path, default=DEFAULT_OUT / REPORT_JSON,
                        help="the report --markdown-into reads")
    parser.add_argument("--child", choices=[step.name for step in STEPS], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(next(step for step in STEPS if step.name == args.child))))
        return 0
    if args.markdown_into:
        write_markdown_into(args.markdown_into, args.report)
        print(f"gpu_check: {args.markdown_into}: list rewritten from {args.report}")
        return 0
    started = time.monotonic()
    facts = gather_facts(args.cosyvoice_root)
    print(f"gpu_check: GPU: {facts.gpu or 'none visible (' + facts.no_gpu_reason + ')'}; onnxruntime "
          f"{facts.ort_version} ({', '.join(facts.ort_providers)}); tensorrt: {'yes' if facts.tensorrt else 'no'}; "
          f"torch: {'yes' if facts.torch else 'no'}; CosyVoice code: {facts.cosyvoice_root or facts.cosyvoice_importable}")
    work = args.work or Path(tempfile.mkdtemp(prefix="ttspilot-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        results = run_steps(facts, work, args.cosyvoice_root)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    report = make_report(facts, results, time.monotonic() - started)
    json_path, md_path = write_report(report, args.out)
    summary = report["summary"]
    print(f"gpu_check: {summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped in "
          f"{report['seconds']:.0f} s; report: {json_path}, {md_path}")
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
