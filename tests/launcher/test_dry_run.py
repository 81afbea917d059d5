"""--dry_run plans for simulated hardware through the real command line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.launcher.launchers import planned_here
from tests.support import REPO
from ttspilot.config import FALLBACK_ORDER
from ttspilot.engines.cosyvoice.engine import CONFIG_FILES
from ttspilot.engines.cosyvoice.tiny import CONFIGS

CONFIG_NAMES = {version: name for name, version in CONFIG_FILES.items()}


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
    output = dry_run("--grpc_port", "50051")
    assert candidates(output) == [candidate.tier for candidate in tier_plan.candidates]
    first = tier_plan.candidates[0].tier
    assert re.search(rf"\$ .*fastapi_server\.py --tier {first} --host 127\.0\.0\.1 --port 9234 --grpc_port 50051",
                     output)  # server flags the launcher does not know pass through, gRPC's port among them
    if not profile.gpus:
        assert f"no GPU: {profile.gpu_absent_reason}" in output


def test_bad_simulated_gpu_is_refused():
    result = subprocess.run(
        [sys.executable, str(REPO / "start_optimized_server.py"), "--dry_run", "--simulate_gpu", "T4"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert result.returncode == 2
    assert "NAME:MEM_GB:CC" in result.stderr


def cosyvoice_folder(tmp_path: Path, version: int) -> Path:
    """A CosyVoice folder as the dry run sees it: recognised by its config file's name, no weights needed."""
    model_dir = tmp_path / f"CosyVoice{version}"
    model_dir.mkdir()
    shutil.copy(CONFIGS / CONFIG_NAMES[version], model_dir)
    return model_dir


def test_dry_run_plans_cosyvoice_tiers_without_torch(tmp_path):
    """The light install plans CosyVoice: its folder is recognised by file name, and planning never imports torch."""
    model_dir = cosyvoice_folder(tmp_path, 2)
    tree = tmp_path / "CosyVoice"
    planning = ("import sys; from ttspilot.launcher.optimized import main; code = main(sys.argv[1:]); "
                "assert 'torch' not in sys.modules, 'planning imported torch'; sys.exit(code)")
    result = subprocess.run(
        [sys.executable, "-c", planning, "--dry_run", "--simulate_gpu", "RTX 4090:24:8.9", "--model_dir",
         str(model_dir), "--cosyvoice_root", str(tree), "--call_timeout", "30", "--vllm_gpu_memory_utilization", "0.3"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert labels(output) == ["full + vLLM", "full", "trt_fp16", "jit_fp16", "jit", "fp16", "basic", "cpu"]
    commands = re.findall(r"^\s+\$ (.*)$", output, flags=re.MULTILINE)
    assert len(commands) == 8
    for command in commands:
        assert (f"--cosyvoice_root {tree} --call_timeout 30 --vllm_gpu_memory_utilization 0.3 --model_dir {model_dir}"
                in command)
    assert "--tier full --load_vllm" in commands[0] and "--load_vllm" not in " ".join(commands[1:])
    assert "--tier full" in commands[1] and "--tier cpu" in commands[-1]


def labels(output: str) -> list[str]:
    return re.findall(r"^  \d+\. (\w+(?: \+ vLLM)?): ", output, flags=re.MULTILINE)


def recipes(output: str) -> dict[str, list[str]]:
    """Candidate label -> the lines the dry run prints below its command (the engine's flags and files)."""
    found: dict[str, list[str]] = {}
    for block in re.split(r"^  \d+\. ", output.split("candidates, in order:\n", 1)[1], flags=re.MULTILINE)[1:]:
        label, *lines = block.split("\n")
        found[label.split(": ", 1)[0]] = [line.strip() for line in lines[1:] if line.startswith("     ")]
    return found


V2_FULL = ["cosyvoice: load_jit=True load_trt=True fp16=True trt_concurrent=2 load_vllm=False",
           "missing  flow.encoder.fp16.zip", "missing  flow.decoder.estimator.fp32.onnx",
           "missing  flow.decoder.estimator.fp16.mygpu.plan"]


def test_rtx_4090_gets_full_first_with_cosyvoice_flags_and_files(tmp_path):
    """Acceptance: the tiny v2 folder on a simulated RTX 4090."""
    model_dir = cosyvoice_folder(tmp_path, 2)
    (model_dir / "flow.decoder.estimator.fp32.onnx").write_bytes(b"onnx")  # an export upstream ships
    output = dry_run("--model_dir", str(model_dir), "--simulate_gpu", "RTX 4090:24:8.9")
    assert labels(output) == ["full + vLLM", *FALLBACK_ORDER]
    found = recipes(output)
    onnx_present = [line.replace("missing  flow.decoder.estimator.fp32", "present  flow.decoder.estimator.fp32")
                    for line in V2_FULL]
    assert found["full"] == onnx_present
    assert found["full + vLLM"][0] == V2_FULL[0].replace("load_vllm=False", "load_vllm=True")
    assert found["full + vLLM"][1] == "missing  vllm"
    assert found["jit"] == ["cosyvoice: load_jit=True load_trt=False fp16=False trt_concurrent=1 load_vllm=False",
                            "missing  flow.encoder.fp32.zip"]
    assert found["cpu"] == ["cosyvoice: load_jit=False load_trt=False fp16=False trt_concurrent=1 load_vllm=False"]
    assert re.search(r"^  vllm(: not installed| \S+), transformers", output, flags=re.MULTILINE)  # the probe


def test_gtx_1650_gets_trt_fp16_first(tmp_path):
    """Acceptance: 4 GB at compute 7.5 is TensorRT's floor and the trt_fp16 band."""
    output = dry_run("--model_dir", str(cosyvoice_folder(tmp_path, 2)), "--simulate_gpu", "GTX 1650:4:7.5")
    assert labels(output) == ["trt_fp16 + vLLM", *FALLBACK_ORDER[1:]]
    first = re.search(r"^  2\. (.*)$", output, flags=re.MULTILINE).group(1)
    assert first == "trt_fp16: 4 GB free GPU memory on GPU 0 (GTX 1650, compute 7.5): 4-8 GB"
    assert recipes(output)["trt_fp16"] == [V2_FULL[0].replace("trt_concurrent=2", "trt_concurrent=1"), *V2_FULL[1:]]
    assert "  - full: skipped, needs >= 8 GB free GPU memory, 4 GB free" in output


def test_cosyvoice3_dry_run_has_no_jit_tiers_and_names_the_ignored_flag(tmp_path):
    output = dry_run("--model_dir", str(cosyvoice_folder(tmp_path, 3)), "--simulate_gpu", "RTX 4090:24:8.9")
    assert labels(output) == ["full + vLLM", "full", "trt_fp16", "fp16", "basic", "cpu"]
    assert recipes(output)["full"] == [
        "cosyvoice: load_trt=True fp16=True trt_concurrent=2 load_vllm=False",
        "missing  flow.decoder.estimator.fp32.onnx", "missing  flow.decoder.estimator.fp16.mygpu.plan",
        "ignored  load_jit: CosyVoice3 has no load_jit option",
    ]
    assert "  - jit_fp16: skipped, engine cosyvoice has no JIT path for this model: same as fp16" in output
    assert "  - jit: skipped, engine cosyvoice has no JIT path for this model: same as basic" in output


def test_cosyvoice1_dry_run_has_every_tier_and_no_vllm(tmp_path):
    output = dry_run("--model_dir", str(cosyvoice_folder(tmp_path, 1)), "--simulate_gpu", "RTX 4090:24:8.9")
    assert labels(output) == list(FALLBACK_ORDER)
    assert recipes(output)["jit_fp16"] == [
        "cosyvoice: load_jit=True load_trt=False fp16=True trt_concurrent=1",
        "missing  llm.text_encoder.fp16.zip", "missing  llm.llm.fp16.zip", "missing  flow.encoder.fp16.zip",
    ]
    assert "  - vLLM: skipped, engine cosyvoice has no vLLM path for this model" in output


def test_piper_dry_run_shows_only_its_flags():
    output = dry_run("--simulate_gpu", "T4:16:7.5")
    assert recipes(output)["full"] == ["piper: load_trt=True load_jit=True fp16=True trt_concurrent=2"]
    assert "  - vLLM: skipped, engine piper has no vLLM path for this model" in output


@pytest.mark.parametrize("script", ["start_optimized_server.py", "start_fallback_server.py"])
@pytest.mark.parametrize("flag", [["--load_vllm"], ["--tier", "jit"], ["--fp16"]])
def test_launchers_refuse_tier_flags_they_set_per_candidate(script, flag):
    """A passed-through tier flag would reach every candidate: --load_vllm would make the cpu tier fail."""
    result = subprocess.run([sys.executable, str(REPO / script), "--port", "1", *flag], capture_output=True, text=True,
                            timeout=60, cwd=REPO)
    assert result.returncode == 2
    assert f"{flag[0]}: the launcher sets these per tier" in result.stdout + result.stderr


def test_model_folder_from_the_environment_is_planned_like_the_flag(tmp_path):
    """TTSPILOT_MODEL_DIR (what the container images are configured with) stands for --model_dir."""
    model_dir = cosyvoice_folder(tmp_path, 2)
    result = subprocess.run(
        [sys.executable, str(REPO / "start_optimized_server.py"), "--dry_run", "--simulate_gpu", "T4:16:7.5"],
        capture_output=True, text=True, timeout=60, cwd=REPO, env=os.environ | {"TTSPILOT_MODEL_DIR": str(model_dir)},
    )
    assert result.returncode == 0, result.stderr
    assert "cosyvoice: load_jit=" in result.stdout
    assert all(f"--model_dir {model_dir}" in command for command in re.findall(r"^\s+\$ (.*)$", result.stdout, re.M))
