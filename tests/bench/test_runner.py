"""The runner: which configurations exist, which are skipped and why, and a real cpu run in a child process."""

from __future__ import annotations

import json

import pytest

from tests.bench.conftest import CpuRun
from ttspilot.bench.measure import Measurement
from ttspilot.bench.runner import all_configurations, config_label, with_skip_reasons
from ttspilot.config import config_from_flags
from ttspilot.engines import engine_support
from ttspilot.hardware import GB, GpuInfo, HardwareProfile, LibraryInfo, probe

PIPER = engine_support(None)
NO_GPU = HardwareProfile(gpu_absent_reason="NVML library not found (no NVIDIA driver installed)")


def test_test_all_covers_every_flag_combination_with_readable_labels():
    configs = all_configurations()
    labels = [config_label(config) for config in configs]
    assert len(configs) == 14  # 4 TRT combinations x 2 concurrencies + 4 others on CUDA, cpu, cpu+jit
    assert len(set(labels)) == len(labels)
    assert {"trt+jit+fp16 x2", "trt x1", "jit+fp16", "basic", "cpu", "cpu+jit"} <= set(labels)
    tiers = {config_label(config): config.tier for config in configs}
    assert tiers["trt+jit+fp16 x2"] == "full" and tiers["trt+jit+fp16 x1"] == "trt_fp16"
    assert tiers["jit+fp16"] == "jit_fp16" and tiers["trt+fp16 x1"] == "custom" and tiers["cpu+jit"] == "custom"
    cpu_jit = config_from_flags(load_jit=True, device="cpu")
    assert cpu_jit.device == "cpu" and cpu_jit.load_jit


def test_without_a_gpu_every_cuda_configuration_is_skipped_with_the_probe_reason():
    rows = with_skip_reasons(all_configurations(), NO_GPU, PIPER)
    runnable = [row.label for row in rows if row.skip_reason is None]
    assert runnable == ["cpu", "cpu+jit"]
    assert all("no usable GPU: NVML library not found" in row.skip_reason for row in rows if row.skip_reason)


def test_on_a_small_gpu_named_tiers_the_policy_rules_out_are_skipped_and_custom_ones_tried():
    gpu = GpuInfo(0, "RTX 3050", 6 * GB, 6 * GB, (8, 6))
    providers = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    hardware = HardwareProfile(gpus=(gpu,), libraries=LibraryInfo("1.20", providers, "10.0"))
    rows = {row.label: row for row in with_skip_reasons(all_configurations(), hardware, PIPER)}
    assert "needs >= 8 GB free GPU memory" in rows["trt+jit+fp16 x2"].skip_reason
    assert rows["trt+jit+fp16 x1"].skip_reason is None
    assert rows["trt+fp16 x2"].skip_reason is None  # custom: the engine says at load time if it cannot


@pytest.mark.integration
def test_cpu_tier_runs_in_a_child_and_reports_every_measure(cpu_run: CpuRun):
    assert "configuration" in cpu_run.stdout and "recommended: cpu" in cpu_run.stdout
    (row,) = cpu_run.results["rows"]
    assert row["status"] == "ran" and row["quality"] == "reference"
    for key in ("load_s", "rtf_median", "rtf_p90", "first_audio_s", "throughput_at_1", "peak_rss_mb"):
        assert row[key] > 0, key
    assert row["rtf_p90"] >= row["rtf_median"]
    if probe().gpus:  # NVML sees a GPU: the watcher reports this process's share, which the cpu tier keeps small
        assert row["peak_gpu_mb"] is not None and row["peak_gpu_mb"] >= 0
    else:
        assert row["peak_gpu_mb"] is None
    measured = Measurement.from_dict(json.loads((cpu_run.output_dir / "runs" / "cpu.result.json").read_text()))
    assert set(measured.rtf) == {"short", "medium"} and all(len(v) == 1 for v in measured.rtf.values())
    assert measured.engine_info is not None and measured.engine_info.tier == "cpu"
    assert (cpu_run.output_dir / "results.csv").is_file()


@pytest.mark.integration
def test_piped_run_has_no_progress_bar_redraws(cpu_run: CpuRun):
    assert "\r" not in cpu_run.stderr and "it/s" not in cpu_run.stderr and "step/s" not in cpu_run.stderr
