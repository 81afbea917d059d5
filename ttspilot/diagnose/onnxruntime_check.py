"""ONNX Runtime: the build, its providers, and whether each provider really executes a model.

ONNX Runtime falls back to the CPU without raising when a GPU provider cannot load (it only
logs "Failed to create CUDAExecutionProvider ..." on native stderr), so `get_available_providers()`
proves nothing. Each provider check builds a two-node model in memory (y = Relu(x + w)),
runs it with profiling on, and reads from the profile which provider executed each node; the
native log is captured so the failure text ("libcudnn.so.9: cannot open shared object file")
names the fix.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ttspilot.diagnose.capture import capture_native_stderr
from ttspilot.diagnose.libraries import version_tuple
from ttspilot.diagnose.result import Finding, failed, passed, skipped, warned
from ttspilot.hardware import HardwareProfile, cuda_device_id
from ttspilot.tiers import TRT_MIN_CC, best_gpu

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TRT = "TensorrtExecutionProvider"

TINY_INPUT = np.arange(-4, 4, dtype=np.float32).reshape(1, 8)
TINY_WEIGHT = np.full((1, 8), 0.5, dtype=np.float32)
TINY_EXPECTED = np.maximum(TINY_INPUT + TINY_WEIGHT, 0)
TINY_NODES = ("diagnose_add", "diagnose_relu")
ONNX_IR_VERSION = 7  # with opset 13: loadable by every onnxruntime since 1.6
ONNX_OPSET = 13


# --- the tiny model -------------------------------------------------------------------------------

def tiny_model_bytes() -> bytes:
    """y = Relu(x + w) for x: float[1, 8], serialized; built with the onnx helper when installed."""
    try:
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return _encode_tiny_model()
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["sum"], name=TINY_NODES[0]),
         helper.make_node("Relu", ["sum"], ["y"], name=TINY_NODES[1])],
        "ttspilot_diagnose",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(TINY_INPUT.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(TINY_INPUT.shape))],
        [numpy_helper.from_array(TINY_WEIGHT, "w")],
    )
    model = helper.make_model(graph, producer_name="ttspilot-diagnose",
                              opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    model.ir_version = ONNX_IR_VERSION
    return model.SerializeToString()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes | str | int) -> bytes:
    """One protobuf field: an int as a varint, bytes or str length-delimited."""
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _encode_tiny_model() -> bytes:
    """The same model written as protobuf by hand (field numbers from onnx.proto), for installs without onnx."""
    float_type = 1  # TensorProto.FLOAT

    def value_info(name: str) -> bytes:
        shape = b"".join(_field(1, _field(1, int(dim))) for dim in TINY_INPUT.shape)
        tensor_type = _field(1, float_type) + _field(2, shape)
        return _field(1, name) + _field(2, _field(1, tensor_type))

    def node(inputs: Sequence[str], outputs: Sequence[str], name: str, op_type: str) -> bytes:
        return b"".join(_field(1, i) for i in inputs) + b"".join(_field(2, o) for o in outputs) \
            + _field(3, name) + _field(4, op_type)

    weight = b"".join(_field(1, int(dim)) for dim in TINY_WEIGHT.shape) + _field(2, float_type) \
        + _field(8, "w") + _field(9, struct.pack(f"<{TINY_WEIGHT.size}f", *TINY_WEIGHT.ravel()))
    graph = _field(1, node(["x", "w"], ["sum"], TINY_NODES[0], "Add")) \
        + _field(1, node(["sum"], ["y"], TINY_NODES[1], "Relu")) \
        + _field(2, "ttspilot_diagnose") + _field(5, weight) + _field(11, value_info("x")) + _field(12, value_info("y"))
    opset = _field(1, "") + _field(2, ONNX_OPSET)
    return _field(1, ONNX_IR_VERSION) + _field(2, "ttspilot-diagnose") + _field(7, graph) + _field(8, opset)


# --- running it -----------------------------------------------------------------------------------

@dataclass
class TinyRun:
    requested: list[str]
    active: list[str] = field(default_factory=list)  # session.get_providers(): what really loaded
    node_providers: dict[str, str] = field(default_factory=dict)  # node -> provider, from the profile
    output_ok: bool = False
    seconds: float = 0.0
    log: str = ""  # native stderr and warnings while the session was created and run
    error: str | None = None

    def ran_on(self, provider: str) -> bool:
        return provider in self.node_providers.values()

    def placement(self) -> str:
        return ", ".join(f"{node} on {provider}" for node, provider in self.node_providers.items()) or "no node events"


def node_providers(profile_events: list[dict]) -> dict[str, str]:
    """Node name -> execution provider from an ONNX Runtime profile (events of category "Node")."""
    found: dict[str, str] = {}
    for event in profile_events:
        args = event.get("args") or {}
        if event.get("cat") != "Node" or "provider" not in args:
            continue
        name = str(event.get("name", "")).removesuffix("_kernel_time")
        found[name] = str(args["provider"])
    return found


def run_tiny_model(ort: Any, providers: list, *, model: bytes | None = None) -> TinyRun:
    requested = [p if isinstance(p, str) else p[0] for p in providers]
    run = TinyRun(requested)
    model = model if model is not None else tiny_model_bytes()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ttspilot-diagnose-") as tmp, capture_native_stderr() as captured:
        try:
            options = ort.SessionOptions()
            options.enable_profiling = True
            options.profile_file_prefix = os.path.join(tmp, "profile")
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep both nodes
            session = ort.InferenceSession(model, options, providers=providers)
            run.active = list(session.get_providers())
            (output,) = session.run(None, {"x": TINY_INPUT})
            run.output_ok = bool(np.allclose(np.asarray(output), TINY_EXPECTED))
            with open(session.end_profiling()) as profile:
                run.node_providers = node_providers(json.load(profile))
        except Exception as exc:  # every failure is the finding
            run.error = f"{type(exc).__name__}: {exc}".strip()
    run.seconds = time.perf_counter() - started
    run.log = captured.text
    return run


# --- explaining failures --------------------------------------------------------------------------

def import_onnxruntime() -> tuple[Any, str | None]:
    """The onnxruntime module, or None and the full import error (re-run in a child for its stderr)."""
    try:
        with capture_native_stderr():  # a failing import prints its NumPy banner; the child run below keeps it
            import onnxruntime
    except Exception as exc:
        child = subprocess.run([sys.executable, "-c", "import onnxruntime"], capture_output=True, text=True,
                               timeout=60)
        return None, "\n".join(filter(None, [f"{type(exc).__name__}: {exc}", child.stderr.strip()[-3000:]]))
    return onnxruntime, None


def _line_with(text: str, pattern: str) -> str:
    for line in text.splitlines():
        if re.search(pattern, line):
            return line.strip()[:300]
    return ""


def explain_failure(text: str, *, cuda_major: int | None = None) -> tuple[str, str]:
    """(cause, fix) for an ONNX Runtime error or log text; the patterns are the known deployment failures."""
    cuda_major = cuda_major or 12
    if re.search(r"_ARRAY_API not found|compiled using NumPy 1\.x|numpy\.core\.multiarray failed to import", text):
        return ("this onnxruntime was compiled against NumPy 1.x and NumPy 2 is installed "
                f"({_line_with(text, r'_ARRAY_API|NumPy 1|multiarray')})",
                'pip install "numpy<2" (or upgrade: pip install -U "onnxruntime-gpu>=1.19", which supports NumPy 2)')
    if match := re.search(r"(libcudnn\w*\.so\.(\d+))", text):
        major = int(match.group(2))
        return (f"cuDNN {major} cannot be loaded ({_line_with(text, re.escape(match.group(1)))})",
                f'pip install "nvidia-cudnn-cu{cuda_major}=={major}.*" and export '
                f"LD_LIBRARY_PATH=<site-packages>/nvidia/cudnn/lib:$LD_LIBRARY_PATH "
                f"(or sudo apt install libcudnn{major}-cuda-{cuda_major})")
    if match := re.search(r"(libnvinfer\w*\.so\.(\d+))", text):
        major = int(match.group(2))
        return (f"TensorRT {major} libraries cannot be loaded ({_line_with(text, re.escape(match.group(1)))})",
                f'pip install "tensorrt-cu{cuda_major}-libs=={major}.*" and export LD_LIBRARY_PATH='
                "$(python -c 'import os, tensorrt_libs; print(os.path.dirname(tensorrt_libs.__file__))')"
                ":$LD_LIBRARY_PATH")
    if match := re.search(r"(lib(?:cublasLt|cublas|cudart|cufft|curand|nvrtc)\w*\.so\.(\d+))", text):
        major = int(match.group(2))
        return (f"CUDA {major} runtime libraries cannot be loaded ({_line_with(text, re.escape(match.group(1)))})",
                f"install the CUDA {major}.x toolkit libraries (pip install nvidia-cuda-runtime-cu{major} "
                f"nvidia-cublas-cu{major} nvidia-cufft-cu{major} nvidia-curand-cu{major} and add their lib folders "
                "to LD_LIBRARY_PATH), or pick the onnxruntime-gpu build for the CUDA you have")
    if re.search(r"driver version is insufficient|cudaErrorInsufficientDriver|CUDA failure 35", text):
        return ("the NVIDIA driver is older than the CUDA runtime this onnxruntime was built for",
                f"upgrade the NVIDIA driver (CUDA {cuda_major}.x needs a driver for CUDA {cuda_major}), "
                "or install an onnxruntime-gpu built for an older CUDA")
    if re.search(r"no CUDA-capable device|cudaErrorNoDevice|CUDA failure 100", text):
        return ("CUDA sees no GPU",
                "unset CUDA_VISIBLE_DEVICES (or set it to a valid index); in a container run with --gpus all")
    if re.search(r"out of memory|cudaErrorMemoryAllocation", text, re.IGNORECASE):
        return ("the GPU is out of memory", "stop the processes holding GPU memory (see the nvidia check)")
    if match := re.search(r"Require cuDNN (\d+)\.\* and CUDA (\d+)\.\*", text):
        cudnn, cuda = match.groups()
        return (f"its CUDA {cuda} / cuDNN {cudnn} dependencies are not all loadable",
                f'pip install "nvidia-cudnn-cu{cuda}=={cudnn}.*" nvidia-cublas-cu{cuda} nvidia-cuda-runtime-cu{cuda} '
                "and add their lib folders to LD_LIBRARY_PATH (see the cudnn check)")
    first = next((line.strip() for line in text.splitlines() if re.search(r"\[E:|Error|error|Failed", line)), "")
    first = first or next((line.strip() for line in text.splitlines() if line.strip()), "no message")
    return (first[:300], "pip install --force-reinstall onnxruntime-gpu (the build matching your CUDA and cuDNN)")


# --- the checks -----------------------------------------------------------------------------------

def _build_text(ort: Any) -> tuple[str, str | None]:
    package = getattr(ort, "package_name", None) or "onnxruntime"
    cuda = getattr(ort, "cuda_version", None) or None
    kind = f"CUDA {cuda} build" if cuda else ("GPU build" if "gpu" in package else "CPU build")
    return f"{package} {ort.__version__} ({kind}, get_device() {ort.get_device()})", cuda


def check_onnxruntime(ort: Any = None) -> Finding:
    """Import, version, build and providers, and the tiny model really executed on the CPU provider."""
    error = None
    if ort is None:
        ort, error = import_onnxruntime()
    if ort is None:
        cause, fix = explain_failure(error or "")
        if "No module named" in (error or ""):
            cause, fix = "onnxruntime is not installed", "pip install onnxruntime (or onnxruntime-gpu on a GPU machine)"
        return failed(f"onnxruntime does not import: {cause}", fix, error=error)
    text, cuda = _build_text(ort)
    providers = list(ort.get_available_providers())
    data = {"version": ort.__version__, "device": ort.get_device(), "providers": providers, "cuda_version": cuda}
    lines = [text, f"providers: {', '.join(providers) or 'none'}"]
    run = run_tiny_model(ort, [CPU])
    data.update(cpu_run={"active": run.active, "nodes": run.node_providers, "seconds": round(run.seconds, 4)})
    if run.error or not run.output_ok:
        cause = explain_failure(run.error or run.log)[0] if run.error else "wrong result"
        return failed("\n".join(lines + [f"tiny model failed on {CPU}: {cause}"]),
                      "pip install --force-reinstall onnxruntime (or onnxruntime-gpu)", **data)
    if set(run.node_providers.values()) != {CPU}:
        return failed("\n".join(lines + [f"tiny model nodes were not run by {CPU}: {run.placement()}"]),
                      "pip install --force-reinstall onnxruntime", **data)
    lines.append(f"tiny model ran on {CPU} ({len(run.node_providers)} nodes, {run.seconds * 1000:.0f} ms)")
    return passed("\n".join(lines), **data)


def _gpu_run_finding(run: TinyRun, provider: str, where: str, *, cuda_major: int | None) -> Finding:
    data = {"active": run.active, "nodes": run.node_providers, "seconds": round(run.seconds, 3),
            "log": run.log[-4000:]}
    if run.error:
        cause, fix = explain_failure(f"{run.error}\n{run.log}", cuda_major=cuda_major)
        return failed(f"{provider} failed on {where}: {cause}", fix, **data)
    if provider not in run.active:
        cause, fix = explain_failure(run.log, cuda_major=cuda_major) if run.log else \
            ("no reason logged", "pip install --force-reinstall onnxruntime-gpu")
        return failed(f"silent fallback: {provider} did not load on {where}, the session runs on "
                      f"{', '.join(run.active) or 'nothing'}; {cause}", fix, **data)
    if not run.ran_on(provider):
        return failed(f"{provider} loaded but executed no node ({run.placement()})",
                      "pip install --force-reinstall onnxruntime-gpu, and check the cudnn and tensorrt checks", **data)
    if not run.output_ok:
        return failed(f"{provider} on {where} computed a wrong result",
                      "update the NVIDIA driver and reinstall onnxruntime-gpu", **data)
    return passed(f"tiny model ran on {provider} on {where} ({run.seconds:.2f} s, first run included); "
                  f"{run.placement()}", **data)


def _imported(ort: Any) -> tuple[Any, Finding | None]:
    if ort is not None:
        return ort, None
    ort, error = import_onnxruntime()
    if ort is None:
        return None, skipped("onnxruntime does not import (see the onnxruntime check)",
                             "fix the onnxruntime check first", error=error)
    return ort, None


class _GpuCheckInputs(NamedTuple):
    ort: Any
    build: str  # e.g. "onnxruntime 1.31.1 (CPU build, get_device() CPU)"
    cuda: str | None
    providers: list[str]
    gpu: Any  # GpuInfo | None


def _gpu_check_inputs(profile: HardwareProfile, ort: Any) -> tuple[_GpuCheckInputs | None, Finding | None]:
    """What both provider checks start from, or the finding that stops them (onnxruntime does not import)."""
    ort, problem = _imported(ort)
    if problem:
        return None, problem
    text, cuda = _build_text(ort)
    return _GpuCheckInputs(ort, text, cuda, list(ort.get_available_providers()), best_gpu(profile)), None


def check_ort_cuda(profile: HardwareProfile, ort: Any = None) -> Finding:
    inputs, problem = _gpu_check_inputs(profile, ort)
    if inputs is None:
        return problem
    ort, text, cuda, providers, gpu = inputs
    gpu_install = "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"
    if CUDA not in providers:
        if gpu is None:
            return skipped(f"no GPU, and {text} has no {CUDA}: as expected on a CPU machine",
                           f"nothing to fix for the cpu tier; on a GPU machine: {gpu_install}", providers=providers)
        return failed(f"{CUDA} not available: {text} is not a CUDA build, so Piper's GPU tiers cannot run "
                      f"on GPU {gpu.index} ({gpu.name})", gpu_install, providers=providers)
    if gpu is None:
        return skipped(f"{text} lists {CUDA}, but no GPU is visible, so it was not tried",
                       "nothing to fix for the cpu tier; see the nvidia check to make a GPU visible",
                       providers=providers)
    run = run_tiny_model(ort, [(CUDA, {"device_id": str(cuda_device_id(gpu.index))}), CPU])
    cuda_major = version_tuple(cuda)[0] if cuda else None
    return _gpu_run_finding(run, CUDA, f"GPU {gpu.index} ({gpu.name})", cuda_major=cuda_major)


def check_ort_tensorrt(profile: HardwareProfile, ort: Any = None) -> Finding:
    inputs, problem = _gpu_check_inputs(profile, ort)
    if inputs is None:
        return problem
    ort, text, cuda, providers, gpu = inputs
    if gpu is None:
        return skipped(f"no GPU, so {TRT} was not tried ({text})",
                       "nothing to fix for the cpu tier", providers=providers)
    if TRT not in providers:
        return warned(f"{TRT} not available in {text}: the TensorRT tiers (full, trt_fp16) are skipped",
                      "pip uninstall -y onnxruntime onnxruntime-gpu && pip install -r requirements-gpu.txt "
                      "-r requirements-tensorrt.txt",
                      providers=providers)
    if gpu.compute_capability < TRT_MIN_CC:
        cc = f"{gpu.compute_capability[0]}.{gpu.compute_capability[1]}"
        return skipped(f"GPU {gpu.index} ({gpu.name}) has compute {cc} < {TRT_MIN_CC[0]}.{TRT_MIN_CC[1]}: "
                       "the tiers never use TensorRT on it", "nothing to fix: the jit tiers are used instead",
                       providers=providers)
    device_id = str(cuda_device_id(gpu.index))
    options = {"device_id": device_id, "trt_max_workspace_size": str(256 << 20), "trt_engine_cache_enable": "False"}
    run = run_tiny_model(ort, [(TRT, options), (CUDA, {"device_id": device_id}), CPU])
    cuda_major = version_tuple(cuda)[0] if cuda else None
    return _gpu_run_finding(run, TRT, f"GPU {gpu.index} ({gpu.name})", cuda_major=cuda_major)
