"""The "compiled" (load_jit) form of an ONNX voice: its graph optimized ahead of time by ONNX Runtime.

Build: a session with graph_optimization_level ORT_ENABLE_ALL and optimized_model_filepath
writes the optimized graph into a cache entry. Load: the cached graph is opened with
ORT_DISABLE_ALL, so it is not optimized a second time. ORT_ENABLE_ALL may bake in
hardware-specific transforms (ONNX Runtime warns about NCHWc layouts), so the key names the
CPU instruction set as well as the ONNX Runtime version, the execution providers and the
source file's sha256; a graph built elsewhere is rebuilt, not loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ttspilot.accel.cache import CacheKey, CacheOutcome, ensure_entry
from ttspilot.accel.fingerprint import CpuFeatures, FileHasher, sm_tag
from ttspilot.accel.providers import SessionSettings, apply_settings

log = logging.getLogger("ttspilot.accel")

GRAPH_FILE = "model.onnx"
_LARGE_MODEL_BYTES = 1536 << 20  # above this, initializers go to an external data file (protobuf's 2 GB limit)


def graph_kind(device: str) -> str:
    return "cpu-graph" if device == "cpu" else "cuda-graph"


def graph_key(
    model_path: Path,
    source_sha256: str,
    *,
    device: str,
    ort_version: str,
    cpu: CpuFeatures,
    providers: Sequence[str],
    compute_capability: str | None = None,
) -> CacheKey:
    """Cache key of the optimized graph of `model_path` for this machine."""
    if device != "cpu" and not compute_capability:
        raise ValueError("a GPU graph key needs the GPU compute capability")
    fields = {
        "format": 1,
        "source_sha256": source_sha256,
        "onnxruntime": ort_version,
        "machine": cpu.machine,
        "cpu_flags": ",".join(cpu.flags),
        "providers": list(providers),
        "optimization": "ORT_ENABLE_ALL",
    }
    tags = [f"ort{ort_version}", cpu.tag]
    if device != "cpu":
        fields["compute_capability"] = compute_capability
        tags.append(sm_tag(compute_capability))
    tags.append(f"src{source_sha256[:8]}")
    return CacheKey(graph_kind(device), Path(model_path).name.removesuffix(".onnx"), fields, tuple(tags))


def build_optimized_graph(
    model_path: Path,
    staging: Path,
    settings: SessionSettings,
    providers: list,
    required_provider: str | None = None,
):
    """Optimize `model_path` into `staging`, then return a session loaded from the graph written there.

    `settings` must be a "build" stage SessionSettings; its optimized_model_filepath is
    replaced by the staging path. When `required_provider` did not load (ONNX Runtime fell
    back silently), the graph was optimized for the wrong device: the build fails. The written
    graph is loaded back (as the "cached" stage does) before it may be published, so a write
    ONNX Runtime did not finish never becomes a cache entry.
    """
    target = staging / GRAPH_FILE
    options = _options(settings)
    options.optimized_model_filepath = str(target)
    # ONNX Runtime warns that an ORT_ENABLE_ALL graph may be hardware specific; the cache key
    # names this machine's CPU flags, so the warning is handled, not operator news.
    options.log_severity_level = 3
    if Path(model_path).stat().st_size > _LARGE_MODEL_BYTES:
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", GRAPH_FILE + ".data"
        )
        options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    _open_on(model_path, options, providers, required_provider)
    if not target.is_file():
        raise RuntimeError(f"ONNX Runtime did not write the optimized graph to {target}")
    cached = replace(settings, graph_optimization_level="ORT_DISABLE_ALL", optimized_model_filepath=None)
    return _open_on(target, _options(cached), providers, required_provider)


def _options(settings: SessionSettings):
    import onnxruntime as ort

    options = ort.SessionOptions()
    apply_settings(settings, options)
    return options


def _open_on(model_path: Path, options, providers: list, required_provider: str | None):
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), options, providers=providers)
    if required_provider and required_provider not in session.get_providers():
        raise RuntimeError(f"{required_provider} did not load (active: {', '.join(session.get_providers())})")
    return session


def ensure_optimized_graph(
    model_path: Path,
    cache_dir: Path,
    key: CacheKey,
    hasher: FileHasher,
    *,
    settings: SessionSettings,
    providers: list,
    required_provider: str | None = None,
    force: bool = False,
) -> CacheOutcome:
    """A valid cached optimized graph for `key`; builds it when missing or invalid.

    When this call builds the entry, `outcome.value` is a session on the graph just written
    (loaded back to check it), so a caller can use it right away.
    """
    needed = int(Path(model_path).stat().st_size * 1.2) + (16 << 20)
    return ensure_entry(
        cache_dir,
        key,
        lambda staging: build_optimized_graph(model_path, staging, settings, providers, required_provider),
        hasher,
        force=force,
        needed_bytes=needed,
        extra_manifest={"source": str(model_path)},
    )
