"""The CosyVoice test environment: a venv with torch and the official code's dependencies, cached.

The main test venv stays light (no torch); CosyVoice tests run their work in a subprocess with this
venv's python. It is several GB and takes minutes to install, so it lives in a cache folder keyed
by the requirements and this recipe, and is built once: in a temporary folder beside its final
place, then renamed, under a file lock so concurrent runs never build it twice.

    python -m tests.cosyvoice_env      # build (or find) it and print its python
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = (REPO_ROOT / "requirements.txt", REPO_ROOT / "requirements-cosyvoice.txt")
# Installed after the requirements with --no-deps (see requirements-cosyvoice.txt's header).
NO_DEPS = ("openai-whisper==20250625",)
# torchcodec (torchaudio.load/save in the newer trees) loads FFmpeg's shared libraries from the system.
FFMPEG_PACKAGES = ("libavcodec59", "libavformat59", "libavutil57", "libswresample4", "libswscale6", "libavdevice59",
                   "libavfilter8")
CACHE_ENV = "TTSPILOT_CI_CACHE"
COMPLETE_MARKER = "ttspilot-env-complete"


class EnvironmentBuildError(RuntimeError):
    """The venv could not be built (typically: no network and no cached copy)."""


def cache_root() -> Path:
    """TTSPILOT_CI_CACHE, else ~/.cache/ttspilot-ci (not XDG_CACHE_HOME: the test run points that at a temp dir)."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "ttspilot-ci"


def recipe_hash() -> str:
    """First 12 hex digits of the sha256 over the requirement files and this recipe."""
    digest = hashlib.sha256()
    for path in (*REQUIREMENTS, Path(__file__)):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def env_dir() -> Path:
    return cache_root() / f"cosyvoice-{recipe_hash()}"


def ffmpeg_present() -> bool:
    listed = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    return "libavcodec.so" in listed and "libavformat.so" in listed


def ensure_ffmpeg(log: Callable[[str], None]) -> None:
    """Install FFmpeg's libraries from Debian when missing and this is root with apt; else say so once, loudly."""
    if ffmpeg_present():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        log("WARNING: FFmpeg's shared libraries are missing and cannot be installed here (needs root and apt-get): "
            "prompt recordings will not load in CosyVoice trees that read them with torchaudio.load")
        return
    log(f"CosyVoice test env: installing FFmpeg's libraries for torchcodec: {' '.join(FFMPEG_PACKAGES)}")
    steps = [["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "--no-install-recommends", *FFMPEG_PACKAGES]]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"})
        if result.returncode != 0:
            log(f"WARNING: {' '.join(step[:2])} failed ({result.stderr.strip()[-300:]}); prompt recordings will not load")
            return


def env_python(log: Callable[[str], None] = print) -> Path:
    """The cached venv's python, building the venv first when it is missing (and FFmpeg's libraries with it)."""
    ensure_ffmpeg(log)
    return ensure_venv(env_dir(), lambda target: _build(target, log))


def ensure_venv(target: Path, build: Callable[[Path], None]) -> Path:
    """`target`'s python once its build is complete: built here under a file lock when missing, so test
    processes and .ci/run's background build wait for one another instead of building twice."""
    python = target / "bin" / "python"
    if (target / COMPLETE_MARKER).is_file():
        return python
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / COMPLETE_MARKER).is_file():
            build(target)
    return python


def _build(target: Path, log: Callable[[str], None]) -> None:
    requirements = [arg for path in REQUIREMENTS for arg in ("-r", str(path))]

    def steps(python: Path) -> list[list[str]]:
        return [[str(python), "-m", "pip", "install", "-q", *requirements],
                [str(python), "-m", "pip", "install", "-q", "--no-deps", *NO_DEPS]]

    build_venv(target, steps, "CosyVoice test env", log)


def build_venv(target: Path, steps: Callable[[Path], list[list[str]]], label: str,
               log: Callable[[str], None]) -> float:
    """Install into a temporary venv beside `target`, then rename it into place; the seconds it took.

    `steps(python)` are the commands to run after the venv exists, with the staging venv's python.
    Only `bin/python -m ...` is used afterwards: the console scripts' shebangs keep the temporary
    path, but the interpreter finds its site-packages relative to itself.
    """
    if target.exists():  # without the marker: not a finished build of this recipe
        shutil.rmtree(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    build_log = target.parent / f"{target.name}.build.log"
    log(f"{label}: building {target} (several GB, a few minutes); pip log: {build_log}")
    started = time.monotonic()
    try:
        with build_log.open("w") as output:
            for step in [[sys.executable, "-m", "venv", str(staging)], *steps(staging / "bin" / "python")]:
                output.write(f"$ {' '.join(step)}\n")
                output.flush()
                if subprocess.run(step, stdout=output, stderr=subprocess.STDOUT).returncode != 0:
                    tail = build_log.read_text(errors="replace").splitlines()[-15:]
                    raise EnvironmentBuildError(f"{' '.join(step[1:4])} failed:\n" + "\n".join(tail))
        seconds = time.monotonic() - started
        (staging / COMPLETE_MARKER).write_text(f"built in {seconds:.0f} s\n")
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"{label}: ready in {time.monotonic() - started:.0f} s at {target}")
    return seconds


if __name__ == "__main__":
    print(env_python(log=lambda line: print(line, file=sys.stderr)))
