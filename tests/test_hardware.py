"""Hardware probe: NVML through a fake, the real probe on this (GPU-less) machine, and no torch import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import onnxruntime
import pynvml
import pytest

from tests.fakes_nvml import (
    FakeGpu,
    FakeNvml,
    NVMLError_DriverNotLoaded,
    NVMLError_LibraryNotFound,
    NVMLError_NoPermission,
)
from ttspilot.hardware import (
    GB,
    NO_GPUS,
    NO_NVML_LIBRARY,
    GpuInfo,
    describe,
    parse_cpu_flags,
    parse_cpu_model,
    probe,
    probe_libraries,
    simulated_gpu,
    tensorrt_wheel,
    with_simulated_gpus,
)

REPO = Path(__file__).resolve().parents[1]
TWO_GPUS = [FakeGpu("NVIDIA GeForce RTX 4090", 24.0, 22.5, (8, 9)), FakeGpu(b"Tesla T4", 16.0, 15.1, (7, 5))]


def test_probe_two_gpus_reads_every_field_and_shuts_nvml_down() -> None:
    nvml = FakeNvml(TWO_GPUS)
    profile = probe(nvml)
    assert profile.gpus == (
        GpuInfo(0, "NVIDIA GeForce RTX 4090", 24 * GB, round(22.5 * GB), (8, 9)),
        GpuInfo(1, "Tesla T4", 16 * GB, round(15.1 * GB), (7, 5)),
    )
    assert profile.gpu_absent_reason is None
    assert (profile.driver_version, profile.cuda_driver_version) == ("550.54.15", "12.4")
    assert nvml.calls[0] == "nvmlInit" and nvml.calls[-1] == "nvmlShutdown"
    assert not profile.simulated and profile.notes == ()


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            NVMLError_LibraryNotFound("NVML Shared Library Not Found"),
            "NVML library not found (no NVIDIA driver installed)",
        ),
        (NVMLError_DriverNotLoaded("Driver Not Loaded"), "Can't initialize NVML: NVIDIA driver not loaded"),
        (NVMLError_NoPermission("Insufficient Permissions"), "Can't initialize NVML: Insufficient Permissions"),
    ],
)
def test_probe_without_usable_nvml_says_why(error: Exception, reason: str) -> None:
    nvml = FakeNvml(TWO_GPUS, init_error=error)
    profile = probe(nvml)
    assert profile.gpus == ()
    assert profile.gpu_absent_reason == reason
    assert nvml.calls == ["nvmlInit"]  # nothing to shut down after a failed init


def test_probe_zero_devices_keeps_driver_and_shuts_down() -> None:
    nvml = FakeNvml([])
    profile = probe(nvml)
    assert profile.gpus == ()
    assert profile.gpu_absent_reason == NO_GPUS == "NVML found but 0 GPUs"
    assert profile.driver_version == "550.54.15"
    assert nvml.calls[-1] == "nvmlShutdown"


def test_probe_keeps_queryable_gpus_and_notes_lost_ones() -> None:
    lost = FakeGpu("Tesla T4", 16.0, 15.1, (7, 5), lost=True)
    profile = probe(FakeNvml([TWO_GPUS[0], lost]))
    assert [gpu.index for gpu in profile.gpus] == [0]
    assert profile.notes == ("GPU 1: NVML could not query it: GPU is lost",)
    nvml = FakeNvml([lost])
    profile = probe(nvml)
    assert profile.gpus == () and profile.gpu_absent_reason == "NVML found 1 GPU(s) but none could be queried"
    assert nvml.calls[-1] == "nvmlShutdown"


def test_probe_without_nvidia_ml_py_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    assert probe().gpu_absent_reason == "nvidia-ml-py not installed (cannot query GPUs through NVML)"


def test_cuda_driver_version_falls_back_to_v1_query() -> None:
    nvml = FakeNvml(TWO_GPUS, cuda_version=11080, cuda_v2_error=NVMLError_LibraryNotFound("libcuda not found"))
    assert probe(nvml).cuda_driver_version == "11.8"
    assert "nvmlSystemGetCudaDriverVersion" in nvml.calls


def test_fake_mirrors_the_real_pynvml_error_classes() -> None:
    for name in (
        "NVMLError_LibraryNotFound",
        "NVMLError_DriverNotLoaded",
        "NVMLError_NoPermission",
        "NVMLError_GpuIsLost",
    ):
        assert issubclass(getattr(pynvml, name), pynvml.NVMLError)
        assert issubclass(getattr(FakeNvml, name), FakeNvml.NVMLError)


def test_real_probe_on_this_machine() -> None:
    profile = probe()
    assert profile.cpu_cores >= 1 and profile.ram_total >= profile.ram_available > 0
    assert profile.libraries.onnxruntime_version == onnxruntime.__version__
    assert "CPUExecutionProvider" in profile.libraries.ort_providers
    if profile.gpus:  # a machine with an NVIDIA GPU: NVML describes each device
        assert all(gpu.name and gpu.memory_total > 0 for gpu in profile.gpus)
        assert describe(profile)[0].startswith("GPU 0: ")
    else:
        assert "NVML" in profile.gpu_absent_reason
        assert describe(profile)[0] == f"no GPU: {profile.gpu_absent_reason}"


def _fake_package(root: Path, name: str, files: dict[str, str], version: str | None = None) -> None:
    """A package whose import fails loudly, so any import of it during a probe breaks the test."""
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text(f"raise RuntimeError('{name} must not be imported by the probe')\n")
    for file_name, text in files.items():
        (root / name / file_name).write_text(text)
    if version is not None:
        dist_info = root / f"{name}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_import_and_probe_never_import_torch_or_tensorrt(tmp_path: Path) -> None:
    torch_version_py = "from typing import Optional\n__version__ = '2.4.1+cu121'\ncuda: Optional[str] = '12.1'\n"
    _fake_package(tmp_path, "torch", {"version.py": torch_version_py}, version="2.4.1+cu121")
    _fake_package(tmp_path, "tensorrt", {}, version="10.3.0")
    script = textwrap.dedent(
        """
        import dataclasses, json, sys
        import ttspilot.hardware as hardware
        lazy = [name for name in ("torch", "tensorrt", "pynvml", "onnxruntime") if name in sys.modules]
        libraries = hardware.probe().libraries
        imported = [name for name in ("torch", "tensorrt") if name in sys.modules]
        print(json.dumps({"lazy": lazy, "imported": imported, "libraries": dataclasses.asdict(libraries)}))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["lazy"] == [] and report["imported"] == []
    libraries = report["libraries"]
    assert (libraries["torch_version"], libraries["torch_cuda"], libraries["tensorrt_version"]) == (
        "2.4.1+cu121",
        "12.1",
        "10.3.0",
    )


def test_torch_cpu_build_read_from_version_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    try:
        importlib.metadata.version("torch")
        pytest.skip("a real torch distribution would answer the version query")
    except importlib.metadata.PackageNotFoundError:
        pass
    _fake_package(tmp_path, "torch", {"version.py": "__version__ = '2.5.0+cpu'\ncuda = None\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    libraries = probe_libraries()
    assert (libraries.torch_version, libraries.torch_cuda) == ("2.5.0+cpu", None)
    assert "torch" not in sys.modules


def test_cpu_flags_and_model_from_cpuinfo() -> None:
    x86 = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx avx2 fma avx512f f16c\n"
    assert parse_cpu_flags(x86) == ("avx", "avx2", "avx512f", "fma", "f16c")
    assert parse_cpu_model(x86) == "AMD EPYC 7B13"
    assert parse_cpu_flags("processor\t: 0\nFeatures\t: fp asimd evtstrm aes\n") == ("asimd",)
    assert parse_cpu_flags("") == () and parse_cpu_model("") is None


def test_fingerprint_ignores_per_run_values_and_keys_on_hardware_and_libraries() -> None:
    profile = probe(FakeNvml(TWO_GPUS))
    fingerprint = profile.fingerprint({"engine": "piper"})
    assert len(fingerprint) == 16 and fingerprint == profile.fingerprint({"engine": "piper"})
    busier = replace(profile, gpus=tuple(replace(gpu, memory_free=GB) for gpu in profile.gpus), ram_available=1)
    assert busier.fingerprint({"engine": "piper"}) == fingerprint
    changed = [
        profile.fingerprint({"engine": "cosyvoice"}),
        replace(profile, driver_version="555.42").fingerprint({"engine": "piper"}),
        replace(profile, libraries=replace(profile.libraries, onnxruntime_version="0.0")).fingerprint(
            {"engine": "piper"}
        ),
        replace(profile, gpus=profile.gpus[:1]).fingerprint({"engine": "piper"}),
        replace(profile, simulated=True).fingerprint({"engine": "piper"}),
    ]
    assert fingerprint not in changed and len(set(changed)) == len(changed)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("RTX 4060:8:8.9", GpuInfo(0, "RTX 4060", 8 * GB, 8 * GB, (8, 9))),
        ("T4:16:7.5", GpuInfo(0, "T4", 16 * GB, 16 * GB, (7, 5))),
        ("GTX 1050:2:6.1", GpuInfo(0, "GTX 1050", 2 * GB, 2 * GB, (6, 1))),
        (" A100 80GB : 79.5 : 8.0 ", GpuInfo(0, "A100 80GB", round(79.5 * GB), round(79.5 * GB), (8, 0))),
    ],
)
def test_simulated_gpu_parses_operator_spec(spec: str, expected: GpuInfo) -> None:
    assert simulated_gpu(spec) == expected


@pytest.mark.parametrize(
    ("spec", "detail"),
    [
        ("RTX 4060", "1 field(s)"),
        ("RTX:4060:8:8.9", "4 field(s)"),
        (":8:8.9", "empty GPU name"),
        ("T4:lots:7.5", "not a number"),
        ("T4:-1:7.5", "positive"),
        ("T4:nan:7.5", "positive"),
        ("T4:16:75", "compute capability"),
    ],
)
def test_simulated_gpu_rejects_bad_specs_clearly(spec: str, detail: str) -> None:
    with pytest.raises(ValueError, match="expected NAME:MEM_GB:CC") as raised:
        simulated_gpu(spec)
    assert detail in str(raised.value)


def test_with_simulated_gpus_replaces_and_reindexes() -> None:
    profile = with_simulated_gpus(probe(FakeNvml([])), [simulated_gpu("T4:16:7.5"), simulated_gpu("RTX 4060:8:8.9")])
    assert [(gpu.index, gpu.name) for gpu in profile.gpus] == [(0, "T4"), (1, "RTX 4060")]
    assert profile.simulated and profile.gpu_absent_reason is None
    with pytest.raises(ValueError):
        with_simulated_gpus(profile, [])


def test_describe_one_line_per_fact() -> None:
    profile = replace(probe(FakeNvml([FakeGpu("NVIDIA T4", 16.0, 15.1, (7, 5))])), cpu_flags=("avx2",))
    lines = describe(profile)
    assert lines[0] == "GPU 0: NVIDIA T4, 15.1/16.0 GB free, compute 7.5"
    assert "NVIDIA driver 550.54.15, CUDA driver 12.4" in lines
    assert any(line.startswith("CPU: ") and line.endswith("avx2") for line in lines)
    assert any(line.startswith("onnxruntime ") for line in lines)
    absent = describe(probe(FakeNvml(init_error=NVMLError_LibraryNotFound("x"))))
    assert absent[0] == f"no GPU: {NO_NVML_LIBRARY}"
    simulated = describe(with_simulated_gpus(profile, [simulated_gpu("T4:16:7.5")]))
    assert simulated[0].endswith("(simulated)") and any("assumed present" in line for line in simulated)


@pytest.mark.parametrize(("torch_version", "wheel"), [
    ("2.11.0+cu130", "tensorrt-cu13"), ("2.5.1+cu121", "tensorrt-cu12"), ("2.3.0+cu118", "tensorrt-cu11"),
])
def test_tensorrt_wheel_follows_torchs_cuda_major(torch_version, wheel):
    assert tensorrt_wheel(torch_version) == wheel


@pytest.mark.parametrize("torch_version", ["2.13.0+cpu", "2.13.0", ""])
def test_tensorrt_wheel_names_both_majors_when_torch_has_no_cuda_build(torch_version):
    assert "tensorrt-cu13 or tensorrt-cu12" in tensorrt_wheel(torch_version)
