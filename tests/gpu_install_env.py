"""The documented GPU install, run in a clean venv and cached by its recipe (the CosyVoice env's pattern).

The commands are read from OPTIMIZATION.md's "GPU install" block and run as written (bash, in the repository,
with the venv's bin first on PATH), so the test checks the sequence operators copy. The venv is a few GB
(onnxruntime-gpu with CUDA and cuDNN wheels), so it is built once per recipe under a file lock: the hash covers
the requirement files, the documented block and this recipe. A step that needs NVIDIA's package index
(requirements-tensorrt.txt) runs only when that index is reachable; the marker file says whether it ran.

    python -m tests.gpu_install_env      # build (or find) it and print its python
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from tests.cosyvoice_env import EnvironmentBuildError, build_venv, cache_root, ensure_venv

REPO_ROOT = Path(__file__).resolve().parents[1]
GUIDE = REPO_ROOT / "OPTIMIZATION.md"
REQUIREMENTS = ("requirements.txt", "requirements-gpu.txt", "requirements-tensorrt.txt")
BLOCK_START = "<!-- gpu-install:start -->"
BLOCK_END = "<!-- gpu-install:end -->"
NVIDIA_INDEX = ("pypi.nvidia.com", 443)
PYPI = ("pypi.org", 443)
RECORD = "gpu-install.json"  # beside the marker: the steps run and skipped, and how long the build took


class PyPIUnreachable(EnvironmentBuildError):
    """No network to PyPI: the install cannot be tried here (the test skips, loudly; any other failure fails it)."""


def documented_steps(guide: str | None = None) -> list[str]:
    """The shell commands of OPTIMIZATION.md's GPU install block, one per line, comments dropped."""
    text = GUIDE.read_text() if guide is None else guide
    try:
        block = text.split(BLOCK_START, 1)[1].split(BLOCK_END, 1)[0]
    except IndexError:
        raise ValueError(f"{GUIDE.name} has no {BLOCK_START} ... {BLOCK_END} block") from None
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("```")]


def needs_nvidia_index(step: str) -> bool:
    return "requirements-tensorrt.txt" in step


def reachable(address: tuple[str, int], timeout: float = 5.0) -> bool:
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


def recipe_hash() -> str:
    digest = hashlib.sha256()
    for name in REQUIREMENTS:
        digest.update((REPO_ROOT / name).read_bytes())
    digest.update("\n".join(documented_steps()).encode())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:12]


def env_dir() -> Path:
    return cache_root() / f"gpu-install-{recipe_hash()}"


def record(env: Path) -> dict:
    """What the build ran: {"steps": [...], "skipped": {step: reason}, "seconds": float}."""
    return json.loads((env / RECORD).read_text())


def env_python(log: Callable[[str], None] = print) -> Path:
    """The cached venv's python, building it first when missing (PyPIUnreachable without network)."""
    return ensure_venv(env_dir(), lambda target: _build(target, log))


def _build(target: Path, log: Callable[[str], None]) -> None:
    if not reachable(PYPI):
        raise PyPIUnreachable(f"PyPI ({PYPI[0]}) is unreachable: the documented GPU install cannot run")
    nvidia = reachable(NVIDIA_INDEX)
    ran: list[str] = []
    skipped: dict[str, str] = {}

    def steps(python: Path) -> list[list[str]]:
        commands = []
        for step in documented_steps():
            if needs_nvidia_index(step) and not nvidia:
                skipped[step] = f"{NVIDIA_INDEX[0]} unreachable"
                continue
            ran.append(step)
            # As an operator types it, in the repository, with the venv's pip first on PATH.
            commands.append(["bash", "-euc", f'cd "{REPO_ROOT}" && PATH="{python.parent}:$PATH" && {step}'])
        return commands

    seconds = build_venv(target, steps, "GPU install test env", log)
    (target / RECORD).write_text(json.dumps({"steps": ran, "skipped": skipped, "seconds": round(seconds, 1)}))


def tensorrt_pin() -> tuple[int, int]:
    """(CUDA major, TensorRT major) that requirements-tensorrt.txt installs: tensorrt-cuXX-libs>=M,<M+1."""
    text = (REPO_ROOT / "requirements-tensorrt.txt").read_text()
    match = re.search(r"^tensorrt-cu(\d+)-libs>=(\d+)(?:\.\d+)*,<(\d+)", text, re.MULTILINE)
    if not match or int(match.group(3)) != int(match.group(2)) + 1:
        raise ValueError("requirements-tensorrt.txt must pin one major: tensorrt-cuXX-libs>=M,<M+1")
    return int(match.group(1)), int(match.group(2))


if __name__ == "__main__":
    try:
        print(env_python(log=lambda line: print(line, file=sys.stderr)))
    except EnvironmentBuildError as error:
        print(f"GPU install test env not built: {error}", file=sys.stderr)
        sys.exit(1)
