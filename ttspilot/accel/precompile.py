"""`precompile_trt.py`: build the compiled artifacts a tier loads, before the server's first start.

A tier's artifact is built by opening one session exactly as the server will (`open_session`
in strict mode), so the cache keys can never drift apart. Tiers that load the same artifact
(full and trt_fp16 share one FP16 TensorRT engine; jit and jit_fp16 one CUDA graph) build it
once. One log line per decision; progress bars on a terminal.

Exit codes: 0 done; 1 a build failed; 2 usage (bad arguments, no voice found); 3 only GPU
tiers were asked for and this machine cannot build them; 4 the cache folder cannot be written
(read-only, a file in its place, a lock file not writable) or the disk is full (no space,
quota, file size limit), also when that happens midway through a build.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ttspilot.accel.cache import (
    CacheWriteError,
    check_entry,
    describe_key_difference,
    entry_path,
    file_damage,
    scan,
    size_on_disk,
)
from ttspilot.accel.fingerprint import FileHasher, hasher_for
from ttspilot.accel.gpu import GpuPresence, detect_gpu
from ttspilot.accel.onnx_session import artifact_key, artifact_kind, open_session, voice_cache_dir
from ttspilot.accel.providers import CUDA, TRT, plan_providers, unavailable_reason
from ttspilot.config import TIERS, OptimizationConfig, ServerSettings, cache_dir_for, config_from_flags
from ttspilot.engines.base import Engine, EngineLoadError, LoadOptions
from ttspilot.progress import elapsed_bar

log = logging.getLogger("ttspilot.accel")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_GPU = 3
EXIT_CACHE = 4


class UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="precompile_trt.py",
        description="Build the compiled caches (optimized graphs, TensorRT engines) that each tier loads.",
        epilog="Exit codes: 0 ok, 1 a build failed, 2 usage, 3 only GPU tiers asked and no GPU here, "
        "4 cache folder not writable (read-only, a file in its place) or disk full.",
    )
    parser.add_argument(
        "--model_dir",
        type=Path,
        default=None,
        help="model folder, as the server is given it; the server's engine says which files it loads "
        "(for Piper voices the embedded voice is always included)",
    )
    parser.add_argument(
        "--tier", nargs="+", choices=list(TIERS), metavar="TIER", help=f"tiers to build for ({', '.join(TIERS)})"
    )
    parser.add_argument("--all", action="store_true", help="every tier this machine can build (the default)")
    parser.add_argument("--fp16", action="store_true", help="with no --tier: a TensorRT FP16 engine")
    parser.add_argument(
        "--trt_concurrent",
        type=int,
        default=None,
        help="with no --tier: the pool size; pooled sessions share one engine, built once",
    )
    parser.add_argument("--device_id", type=int, default=0, help="GPU index (default 0)")
    parser.add_argument("--force", action="store_true", help="rebuild even when a valid cache exists")
    parser.add_argument("--list", action="store_true", help="show what is cached and whether it is valid here")
    parser.add_argument("--cosyvoice_root", type=Path, default=None,
                        help="CosyVoice models: the official checkout, as the server is given it "
                        "(default: TTSPILOT_COSYVOICE_ROOT, else an importable cosyvoice)")
    return parser


def find_voices(model_dir: Path | None) -> list[Path]:
    """The model files a server started with `model_dir` loads, as its engine lists them (the embedded voice
    included), so precompile builds for exactly what it serves. Only ONNX Runtime engines have caches to build here.
    """
    from ttspilot.engines import engine_class

    try:
        return engine_class(model_dir).model_files(model_dir)
    except EngineLoadError as exc:
        raise UsageError(exc.reason) from exc


def requested_configs(args: argparse.Namespace) -> list[OptimizationConfig]:
    if args.tier:
        if args.fp16 or args.trt_concurrent is not None:
            log.info("precompile: --fp16/--trt_concurrent ignored: a --tier fixes them")
        return [config_from_flags(t, device_id=args.device_id) for t in dict.fromkeys(args.tier)]
    if args.fp16 or args.trt_concurrent is not None:
        return [
            config_from_flags(
                load_trt=True,
                fp16=args.fp16,
                trt_concurrent=args.trt_concurrent or 1,
                device="cuda",
                device_id=args.device_id,
            )
        ]
    return [config_from_flags(t, device_id=args.device_id) for t in TIERS]


def cannot_build_here(config: OptimizationConfig, gpu: GpuPresence) -> str | None:
    """Why this machine cannot build `config`'s artifacts, or None when it can."""
    if config.device == "cpu":
        return None
    if not gpu.present:
        return gpu.reason
    if gpu.device(config.device_id) is None:
        return f"no GPU with index {config.device_id} ({gpu.reason})"
    if config.load_trt and TRT not in gpu.ort_providers:
        return unavailable_reason(TRT, gpu.ort_providers)
    if CUDA not in gpu.ort_providers:
        return unavailable_reason(CUDA, gpu.ort_providers)
    return None


@dataclass
class _Expected:
    key: object
    tiers: list[str]


def _expected_artifacts(voice: Path, gpu: GpuPresence, hasher: FileHasher, device_id: int) -> dict[str, _Expected]:
    """kind/name -> the key each tier runnable here would load for `voice`."""
    source = hasher.sha256(voice)
    device = gpu.device(device_id)
    expected: dict[str, _Expected] = {}
    for name, tier in TIERS.items():
        if cannot_build_here(tier, gpu):
            continue
        plan = plan_providers(tier, gpu.ort_providers)
        kind = artifact_kind(tier, plan)
        if kind is None:
            continue
        try:
            key = artifact_key(
                kind,
                voice,
                source,
                config=tier,
                plan=plan,
                compute_capability=device.compute_capability if device else None,
            )
        except (ValueError, OSError) as exc:
            log.info("%s: cannot name its %s cache here: %s", name, kind, exc)
            continue
        expected.setdefault(key.name, _Expected(key, [])).tiers.append(name)
    return expected


def list_cache(voices: Sequence[Path], cache_dir: Path, gpu: GpuPresence, device_id: int = 0) -> list[list[str]]:
    """Rows of (voice, artifact, tiers, status, size, built, path) for every expected and every found entry.

    Every entry's files are checked against its manifest (size, then sha256), and the size shown is
    what is on disk, so a truncated file reads as corrupt, never as the size it was built with.
    """
    hasher = hasher_for(cache_dir)
    found = scan(cache_dir)
    rows: list[list[str]] = []
    for voice in voices:
        stem = voice.name.removesuffix(".onnx")
        expected = _expected_artifacts(voice, gpu, hasher, device_id)
        shown: set[Path] = set()
        for item in expected.values():
            path = entry_path(cache_dir, item.key)
            validity = check_entry(path, item.key, hasher)
            if validity.valid:
                status = "valid"
            elif validity.reason == "missing":
                status = "missing"
            elif validity.corrupt:
                status = f"corrupt: {validity.reason}; will rebuild"
            else:
                status = f"rebuild: {validity.reason}"
            size = size_on_disk(path) if path.is_dir() else None
            rows.append(_row(stem, item.key.kind, ", ".join(item.tiers), status, path, validity.manifest or {}, size))
            shown.add(path)
        for entry in found:
            manifest = entry.manifest or {}
            belongs = manifest.get("source") == str(voice) or entry.path.name.startswith(f"{stem}--")
            if not belongs or entry.path in shown:
                continue
            same_kind = [e.key for e in expected.values() if e.key.kind == entry.kind]
            damage = file_damage(entry.path, manifest.get("files") or {}, hasher)
            if damage is not None:
                status = f"corrupt: {damage}"
            elif same_kind:
                status = "not valid here: " + describe_key_difference(
                    manifest.get("key") or {}, same_kind[0].canonical_fields
                )
            elif entry.kind != "cpu-graph":
                status = f"not checkable here: {gpu.reason}"
            else:
                status = "not valid here"
            rows.append(_row(stem, entry.kind, "-", status, entry.path, manifest, entry.size_bytes))
    return rows


def _row(stem, kind, tiers, status, path: Path, manifest: dict, size: int | None) -> list[str]:
    built = manifest.get("created_utc", "-")
    if built != "-":
        try:
            built = datetime.fromisoformat(built).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            pass
    shown = f"{size / 2**20:.1f} MiB" if size is not None else "-"
    return [stem, kind, tiers, status, shown, built, str(path)]


def _build(
    voices: Sequence[Path], configs: Sequence[OptimizationConfig], model_dir: Path | None, gpu: GpuPresence, force: bool
) -> int:
    failures = 0
    ready = built = 0
    for voice in voices:
        stem = voice.name.removesuffix(".onnx")
        done: dict[tuple[str, bool], str] = {}
        for config in configs:
            plan = plan_providers(config, gpu.ort_providers)
            kind = artifact_kind(config, plan)
            if kind is None:
                log.info(
                    "%s: %s: nothing to precompile (the CUDA provider optimizes the graph at load time)",
                    config.tier,
                    stem,
                )
                continue
            share = (kind, config.fp16 if kind == "ort-trt" else False)
            if share in done:
                log.info("%s: %s: uses the %s cache built for %s", config.tier, stem, kind, done[share])
                continue
            done[share] = config.tier
            try:
                with elapsed_bar(f"{config.tier}: {stem}: {kind}"):
                    opened = open_session(voice, config, voice_cache_dir(model_dir, voice), force=force, strict=True)
            except CacheWriteError as exc:
                log.error("%s: %s", config.tier, exc)
                return EXIT_CACHE
            except Exception as exc:  # noqa: BLE001  (one tier's failure must not stop the others)
                text = str(exc).strip().splitlines()
                log.error("%s: %s: build failed: %s", config.tier, stem, text[0] if text else type(exc).__name__)
                failures += 1
                continue
            ready += 1
            built += bool(opened.cache and opened.cache.status in ("built", "rebuilt"))
            if config.trt_concurrent > 1:
                log.info(
                    "%s: trt_concurrent=%d: the pooled sessions share this cache entry (built once)",
                    config.tier,
                    config.trt_concurrent,
                )
    log.info(
        "precompile: %d artifact(s) ready (%d built, %d reused), %d failed; cache at %s",
        ready,
        built,
        ready - built,
        failures,
        cache_dir_for(model_dir),
    )
    return EXIT_FAILED if failures else EXIT_OK


@contextmanager
def _operator_log() -> Iterator[None]:
    """Plain one-line messages when run on its own; inside a launcher its logging already prints them."""
    if logging.getLogger().handlers:
        yield
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    package = logging.getLogger("ttspilot")
    previous = package.level
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(previous)


def engine_artefacts(engine: type[Engine], args: argparse.Namespace) -> int:
    """Engines that build their own files (torch engines): list them, or build what this machine can.

    Exit 3 when an asked --tier needs a file only a GPU can build here; `--all` asks for what this machine can.
    """
    from tabulate import tabulate

    configs = requested_configs(args)
    options = LoadOptions(cosyvoice_root=args.cosyvoice_root or ServerSettings().cosyvoice_root)
    try:
        rows = engine.artefacts(args.model_dir, configs, options, build=not args.list, force=args.force)
    except EngineLoadError as exc:
        log.error("precompile: %s", exc.reason)
        return EXIT_USAGE
    except CacheWriteError as exc:
        log.error("precompile: %s", exc)
        return EXIT_CACHE
    print(f"cache: {cache_dir_for(args.model_dir)}")
    print(tabulate([[row.name, row.kind, ", ".join(row.tiers), row.state, row.detail] for row in rows],
                   headers=["file", "kind", "tiers", "state", "detail"], maxcolwidths=[None, None, 24, None, 70])
          if rows else "the asked tiers open no compiled file of this engine")
    if args.list:
        return EXIT_OK
    failed = [row.name for row in rows if row.failed]
    gpu_only = [row.name for row in rows if row.needs_gpu]
    log.info("precompile: %d file(s) ready, %d failed, %d need a GPU here%s", len(rows) - len(failed) - len(gpu_only),
             len(failed), len(gpu_only), "" if not gpu_only else f" ({', '.join(gpu_only)})")
    if failed:
        return EXIT_FAILED
    return EXIT_NO_GPU if gpu_only and args.tier else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.trt_concurrent is not None and args.trt_concurrent < 1:
        build_parser().error("--trt_concurrent must be at least 1")
    from ttspilot.engines import engine_class

    try:
        engine = engine_class(args.model_dir)
    except EngineLoadError as exc:
        with _operator_log():
            log.error("precompile: %s", exc.reason)
        return EXIT_USAGE
    if engine.support.runtime != "onnxruntime":
        with _operator_log():
            return engine_artefacts(engine, args)
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)  # ONNX Runtime warnings are not operator news here; errors still show
    with _operator_log():
        try:
            voices = find_voices(args.model_dir)
        except UsageError as exc:
            log.error("precompile: %s", exc)
            return EXIT_USAGE
        cache_root = cache_dir_for(args.model_dir)
        gpu = detect_gpu()
        log.info(
            "machine: %s; onnxruntime %s providers: %s",
            gpu.reason,
            onnxruntime.__version__,
            ", ".join(gpu.ort_providers),
        )

        if args.list:
            from tabulate import tabulate

            rows = [
                row
                for voice in voices
                for row in list_cache([voice], voice_cache_dir(args.model_dir, voice), gpu, args.device_id)
            ]
            print(f"cache: {cache_root}")
            print(
                tabulate(rows, headers=["voice", "artifact", "tiers", "status", "size", "built", "path"])
                if rows
                else "nothing cached and nothing to build on this machine"
            )
            return EXIT_OK

        configs = requested_configs(args)
        buildable = [c for c in configs if cannot_build_here(c, gpu) is None]
        skipped = [c for c in configs if c not in buildable]
        if skipped:
            reasons = {cannot_build_here(c, gpu) for c in skipped}
            log.info("%s skipped: %s", ", ".join(c.tier for c in skipped), "; ".join(sorted(r for r in reasons if r)))
        if not buildable:
            gpu_only = all(c.device == "cuda" for c in configs)
            log.error(
                "precompile: nothing to build: %s",
                "these tiers need a GPU and " + gpu.reason if gpu_only else "no tier can be built",
            )
            return EXIT_NO_GPU if gpu_only else EXIT_FAILED
        return _build(voices, buildable, args.model_dir, gpu, args.force)
