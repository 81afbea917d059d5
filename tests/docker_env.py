"""Docker for the image tests (tests/test_docker.py): the daemon, a local Debian base image, the built images.

No registry can be reached here, so the base the Dockerfile's PYTHON_BASE/CUDA_BASE are swapped to is a
Debian made by debootstrap (with Debian's python3 and venv), kept as a tarball in the CI cache folder under a
name keyed by its recipe and imported into the daemon when missing. dockerd is started when none answers, and
stopped again by whoever started it (the test module, or .ci/run's `stop`). Everything runs under one file lock:
.ci/run's background preparation and the test never build twice.

    python -m tests.docker_env prepare   # daemon, base, both images (.ci/run starts this in the background)
    python -m tests.docker_env stop      # stop the dockerd this module started, if any
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from tests.cosyvoice_env import cache_root

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile"
SUITE, MIRROR = "bookworm", "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
DEBOOTSTRAP_OPTIONS = ("--variant=minbase", f"--include={','.join(BASE_PACKAGES)}")
BASE_RECIPE = " ".join(("debootstrap", *DEBOOTSTRAP_OPTIONS, SUITE, MIRROR))
CPU_TAG, GPU_TAG = "ttspilot-ci/ttspilot:cpu", "ttspilot-ci/ttspilot:gpu-on-debian"
# The GPU wheels (3 GB of TensorRT and cuDNN) need the CUDA base to be of any use: on the Debian base the gpu
# target's steps run with the default install's requirements instead (OPTIMIZATION.md, "Containers").
GPU_STEPS_ARGS = {"GPU_REQUIREMENTS": "requirements.txt", "WITH_TENSORRT": "0"}
EXTRA_CA_DIR = Path("/usr/local/share/ca-certificates")  # a TLS-intercepting proxy's CA, when this host has one
DOCKERD_TIMEOUT = 60.0
LABEL = "ttspilot.ci=tests"  # on the images built here, so the ones a rebuild replaced can be pruned alone


class DockerUnavailable(RuntimeError):
    """No daemon answers and none could be started, or the local base could not be made."""


def base_tag() -> str:
    return f"ttspilot-ci/debian-base:{hashlib.sha256(BASE_RECIPE.encode()).hexdigest()[:12]}"


def base_tarball() -> Path:
    return cache_root() / f"debian-base-{base_tag().rsplit(':', 1)[1]}.tar"


def docker(*args: str, timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The docker CLI; raises with its stderr when `check` and it fails."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} failed: {result.stderr.strip()[-800:]}")
    return result


def daemon_answers() -> bool:
    try:
        return docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _started_marker() -> Path:
    return cache_root() / "dockerd.started-by-ttspilot"


def ensure_daemon(log: Callable[[str], None]) -> bool:
    """A daemon that answers; True when this call started it (its pid is kept for `stop_daemon`)."""
    cache_root().mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_root() / "dockerd.lock")):  # .ci/run's preparation and the test may both get here
        return not daemon_answers() and _start_daemon(log)


def _start_daemon(log: Callable[[str], None]) -> bool:
    """Start dockerd in its own session and wait until it answers; DockerUnavailable with its log's tail if not."""
    if shutil.which("docker") is None or shutil.which("dockerd") is None:
        raise DockerUnavailable("no docker CLI or dockerd here (Debian: apt-get install docker.io)")
    if os.geteuid() != 0:
        raise DockerUnavailable("dockerd is not running and only root can start it")
    log_path = cache_root() / "dockerd.log"
    with log_path.open("a") as output:
        process = subprocess.Popen(["dockerd"], stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + DOCKERD_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        if daemon_answers():
            _started_marker().write_text(str(process.pid))
            log(f"docker: started dockerd (pid {process.pid}); log {log_path}")
            return True
        time.sleep(0.5)
    if process.poll() is None:
        process.terminate()
    tail = log_path.read_text(errors="replace").splitlines()[-5:]
    raise DockerUnavailable("dockerd did not start: " + " | ".join(tail))


def stop_daemon(log: Callable[[str], None]) -> None:
    """Stop the dockerd `ensure_daemon` started (SIGTERM: it stops its containerd too), if it still runs."""
    marker = _started_marker()
    if not marker.is_file():
        return
    pid = int(marker.read_text())
    marker.unlink()
    try:
        if Path(f"/proc/{pid}/comm").read_text().strip() != "dockerd":
            return  # that dockerd is gone, and its pid went to another process
        os.kill(pid, signal.SIGTERM)
    except (FileNotFoundError, ProcessLookupError):
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _exited(pid):
            log(f"docker: stopped dockerd (pid {pid})")
            return
        time.sleep(0.2)
    log(f"WARNING: dockerd (pid {pid}) still runs 30 s after SIGTERM")


def _exited(pid: int) -> bool:
    """Whether `pid` is gone: reaped when it is this process's child, else no longer signalable."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass  # started by another process (.ci/run's preparation)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def ensure_base(log: Callable[[str], None]) -> str:
    """The local Debian base image's tag: imported from the cached tarball, debootstrapped first when missing."""
    tag = base_tag()
    if docker("image", "inspect", tag, check=False).returncode == 0:
        return tag
    tarball = base_tarball()
    if not tarball.is_file():
        if shutil.which("debootstrap") is None:
            raise DockerUnavailable("debootstrap is missing (Debian: apt-get install debootstrap)")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=".debian-base-", dir=tarball.parent) as staging:
            root = Path(staging) / "root"
            result = subprocess.run(["debootstrap", *DEBOOTSTRAP_OPTIONS, SUITE, str(root), MIRROR],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise DockerUnavailable(f"debootstrap failed: {result.stdout.strip()[-500:]}")
            shutil.rmtree(root / "var" / "cache" / "apt" / "archives", ignore_errors=True)
            partial = Path(staging) / "base.tar"
            subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
            partial.rename(tarball)
        log(f"docker: debootstrapped {SUITE} into {tarball} in {time.monotonic() - started:.0f} s")
    docker("import", str(tarball), tag, timeout=300)
    log(f"docker: imported {tarball.name} as {tag}")
    return tag


def extra_ca() -> str:
    """This host's added CAs (a TLS-intercepting proxy's), for the build's EXTRA_CA_CERT; empty when none."""
    return "".join(path.read_text() for path in sorted(EXTRA_CA_DIR.glob("*.crt")))


@dataclass(frozen=True)
class Build:
    tag: str
    seconds: float


def build(target: str, tag: str, base: str, build_args: dict[str, str] | None = None) -> Build:
    """`docker build` of one target of docker/Dockerfile with both bases swapped to `base`."""
    args = {"PYTHON_BASE": base, "CUDA_BASE": base, "EXTRA_CA_CERT": extra_ca(), **(build_args or {})}
    command = ["build", "--network", "host", "-f", str(DOCKERFILE), "--target", target, "-t", tag, "--label", LABEL]
    command += [item for name, value in args.items() for item in ("--build-arg", f"{name}={value}")]
    started = time.monotonic()
    docker(*command, str(REPO_ROOT), timeout=1200)
    return Build(tag, time.monotonic() - started)


def prepare(log: Callable[[str], None]) -> tuple[Build, Build]:
    """Base and both images, under the lock (a second caller waits, then finds the layers cached)."""
    cache_root().mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache_root() / "docker.lock")):
        base = ensure_base(log)
        cpu = build("cpu", CPU_TAG, base)
        gpu = build("gpu", GPU_TAG, base, GPU_STEPS_ARGS)
        docker("image", "prune", "-f", "--filter", f"label={LABEL}")  # earlier builds' images, now untagged
    log(f"docker: built {cpu.tag} in {cpu.seconds:.0f} s, {gpu.tag} in {gpu.seconds:.0f} s")
    return cpu, gpu


if __name__ == "__main__":
    def say(line: str) -> None:
        print(line, file=sys.stderr)

    if sys.argv[1:] == ["stop"]:
        stop_daemon(say)
    else:
        try:
            ensure_daemon(say)
            prepare(say)
        except DockerUnavailable as error:
            sys.exit(f"docker: unavailable, the container image tests will be SKIPPED: {error}")
