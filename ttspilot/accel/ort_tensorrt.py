"""Engine cache of ONNX Runtime's TensorRT execution provider, kept as one validated cache entry.

ONNX Runtime writes its engines (`*.engine`, `*.profile`) and timing cache into
`trt_engine_cache_path` and reloads them when the same model is opened again; it does not
check the TensorRT version, and its documentation says to clear the cache when TensorRT,
ONNX Runtime, the model or the GPU changes. So each (ORT version, TensorRT version, compute
capability, precision, source hash, shape profile) gets its own entry directory: the first
session builds the engines in a staging directory, which is published atomically with a
manifest; every later session of the pool, and every later start, loads from it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ttspilot.accel.cache import CacheKey, CacheOutcome, ensure_entry
from ttspilot.accel.fingerprint import FileHasher, sm_tag
from ttspilot.accel.providers import TRT, ShapeProfile, profile_fields

KIND = "ort-trt"


def ort_trt_key(
    model_path: Path,
    source_sha256: str,
    *,
    ort_version: str,
    tensorrt_version: str | None,
    compute_capability: str,
    fp16: bool,
    profile: ShapeProfile,
) -> CacheKey:
    if not compute_capability:
        raise ValueError("a TensorRT engine cache key needs the GPU compute capability")
    trt_version = tensorrt_version or "unknown"
    precision = "fp16" if fp16 else "fp32"
    fields = {
        "format": 1,
        "source_sha256": source_sha256,
        "onnxruntime": ort_version,
        "tensorrt": trt_version,
        "compute_capability": compute_capability,
        "precision": precision,
        "profile": profile_fields(profile),
    }
    tags = (
        f"ort{ort_version}",
        f"trt{trt_version}",
        sm_tag(compute_capability),
        precision,
        f"src{source_sha256[:8]}",
    )
    return CacheKey(KIND, Path(model_path).name.removesuffix(".onnx"), fields, tags)


def ensure_engine_cache(
    model_path: Path,
    cache_dir: Path,
    key: CacheKey,
    hasher: FileHasher,
    *,
    open_with_cache_dir: Callable[[Path], object],
    force: bool = False,
) -> CacheOutcome:
    """A valid engine cache directory for `key`, built by opening one TensorRT session on it.

    `open_with_cache_dir(path)` must create an InferenceSession whose TensorRT engine and timing
    caches point at `path` and return it. The build fails (and leaves nothing) when the
    TensorRT provider is not active in that session.
    """

    def build(staging: Path) -> None:
        session = open_with_cache_dir(staging)
        active = session.get_providers()
        if TRT not in active:
            raise RuntimeError(f"TensorRT execution provider did not load (active: {', '.join(active)})")
        engines = sorted(p.name for p in staging.iterdir() if p.suffix == ".engine")
        info = {"providers": active, "engines": engines, "model": str(model_path)}
        (staging / "build-info.json").write_text(json.dumps(info, indent=2) + "\n")
        del session

    needed = int(Path(model_path).stat().st_size * 2) + (64 << 20)
    return ensure_entry(
        cache_dir, key, build, hasher, force=force, needed_bytes=needed, extra_manifest={"source": str(model_path)}
    )
