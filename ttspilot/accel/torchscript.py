"""A torch module scripted, frozen and optimized for inference as TorchScript, in a validated cache entry.

`optimized_script` is the sequence model code's own JIT exports use (CosyVoice's
`bin/export_jit.py`): torch.jit.script -> torch.jit.freeze (keeping `preserved_attrs`, e.g.
a method called besides `forward`) -> torch.jit.optimize_for_inference. Half precision is made
on a deep copy: `Module.half()` converts in place, and the caller's module keeps serving in fp32.

`ensure_script` keys the file by torch version, the sha256 of the weights file and of the code
the module was defined by, module name, precision and preserved attributes: a script is a
snapshot of code and weights, so a change to either is rebuilt, never loaded.
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttspilot.accel.cache import CacheKey, CacheOutcome, ensure_entry, explained_os_errors
from ttspilot.accel.fingerprint import FileHasher, hasher_for

log = logging.getLogger("ttspilot.accel")

KIND = "torchscript"
SCRIPT_FILE = "module.zip"
PRECISIONS = ("fp32", "fp16")


class ScriptExportError(RuntimeError):
    """A module could not be scripted; the message is one line an operator can act on."""


@dataclass(frozen=True)
class ScriptBuild:
    path: Path
    seconds: float
    size_bytes: int
    precision: str
    torch_version: str


def first_line(error: BaseException) -> str:
    """The first non-empty line of an error: TorchScript's messages carry whole source excerpts."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def optimized_script(module: Any, preserved_attrs: Sequence[str] = ()) -> Any:
    """script -> freeze -> optimize_for_inference, as upstream's export does (the module is not changed).

    Upstream also sets the JIT fusion strategy and turns the profiling executor off before
    exporting; those settings change how a script runs, not the graph saved (checked on the
    CosyVoice encoders: identical graphs), so they are left alone here.
    """
    import torch

    with warnings.catch_warnings():
        # torch 2.14 marks script/freeze/optimize_for_inference deprecated (FutureWarning); the
        # TorchScript zip is still the format the model code's load_jit opens, so it is made on purpose.
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
        script = torch.jit.script(module)
        script = torch.jit.freeze(script.eval(), preserved_attrs=list(preserved_attrs))
        return torch.jit.optimize_for_inference(script)


def save_script(script: Any, path: Path) -> None:
    """Save through a temporary file in the same folder and os.replace: a reader never sees half a zip."""
    path = Path(path)
    with explained_os_errors(path.parent):
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            script.save(temporary)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def build_script(module: Any, path: Path, *, name: str, precision: str,
                 preserved_attrs: Sequence[str] = ()) -> ScriptBuild:
    """Script `module` (named `name` in messages) in `precision` (fp16: on a half-precision deep copy) to `path`."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    started = time.perf_counter()
    source = copy.deepcopy(module).half() if precision == "fp16" else module
    try:
        script = optimized_script(source, preserved_attrs)
    except Exception as exc:  # TorchScript's frontend raises RuntimeError, NotSupportedError, ...
        raise ScriptExportError(f"TorchScript could not script {name} ({type(module).__name__}, {precision}): "
                                f"{first_line(exc)}") from exc
    save_script(script, path)
    return ScriptBuild(Path(path), time.perf_counter() - started, Path(path).stat().st_size, precision,
                       torch.__version__)


def exported_module_fields(name: str, source_sha256: str, code_sha256: str, torch_version: str) -> dict[str, Any]:
    """What every file exported from a torch module is valid for: torch, the weights, the code, the module."""
    return {"format": 1, "torch": str(torch_version), "source_sha256": source_sha256, "code_sha256": code_sha256,
            "module": name}


def exported_module_tags(torch_version: str, variant: str, source_sha256: str, code_sha256: str) -> tuple[str, ...]:
    return f"torch{torch_version}", variant, f"src{source_sha256[:8]}", f"code{code_sha256[:8]}"


def script_key(name: str, source_sha256: str, *, code_sha256: str, precision: str,
               preserved_attrs: Sequence[str] = (), torch_version: str) -> CacheKey:
    fields = {**exported_module_fields(name, source_sha256, code_sha256, torch_version), "precision": precision,
              "preserved_attrs": sorted(preserved_attrs)}
    return CacheKey(KIND, name, fields, exported_module_tags(torch_version, precision, source_sha256, code_sha256))


def module_bytes(module: Any) -> int:
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))


def ensure_script(
    module: Any,
    source_path: Path,
    cache_dir: Path,
    *,
    name: str,
    precision: str,
    code_sha256: str,
    preserved_attrs: Sequence[str] = (),
    force: bool = False,
    hasher: FileHasher | None = None,
) -> CacheOutcome[ScriptBuild]:
    """A valid cached script of `module` (weights from `source_path`): `outcome.path / SCRIPT_FILE`."""
    import torch

    hasher = hasher or hasher_for(cache_dir)
    key = script_key(name, hasher.sha256(Path(source_path)), code_sha256=code_sha256, precision=precision,
                     preserved_attrs=preserved_attrs, torch_version=torch.__version__)

    def build(staging: Path) -> ScriptBuild:
        return build_script(module, staging / SCRIPT_FILE, name=name, precision=precision,
                            preserved_attrs=preserved_attrs)

    return ensure_entry(cache_dir, key, build, hasher, force=force, needed_bytes=2 * module_bytes(module) + (16 << 20),
                        extra_manifest={"source": str(source_path), "module_class": type(module).__name__})
