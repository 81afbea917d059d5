"""What makes a compiled artifact valid here: source file hashes, CPU instruction set, library versions.

Hashing a 63 MB voice costs about 0.15 s, as much as loading its optimized graph, so
`FileHasher` remembers sha256 digests keyed by the file's identity on disk
(device, inode, size, mtime and ctime in nanoseconds). A file rewritten in place gets a
new mtime and ctime, so a stale digest is never returned. Like git's "racily clean" rule,
a digest is only remembered when the file was last changed a few seconds before hashing
began: timestamps have coarse granularity, and a file written in the same tick as it was
hashed could change again without its stamp moving.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ttspilot.hardware import cpuinfo_flags, read_cpuinfo

log = logging.getLogger("ttspilot.accel")

MEMO_FILENAME = "file-hashes.json"
MEMO_MAX_ENTRIES = 256
RACY_WINDOW_S = 3.0  # a file changed less than this before hashing is not remembered
_CHUNK = 4 << 20


def _identity(stat: os.stat_result) -> list[int]:
    return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class FileHasher:
    """sha256 of files, remembered across processes in a small JSON memo (None: this process only).

    The memo is only a shortcut: it is read leniently (anything odd means "not remembered")
    and written atomically; a lost update only costs one rehash.
    """

    def __init__(self, memo_path: Path | None = None, *, clock=time.time):
        self.memo_path = memo_path
        self._clock = clock
        self._lock = threading.Lock()
        self._memo: dict[str, dict] | None = None
        self.hashed: list[Path] = []  # files really read, for tests and logs

    def sha256(self, path: Path) -> str:
        real = os.path.realpath(path)
        before = os.stat(real)
        ident = _identity(before)
        with self._lock:
            remembered = self._load().get(real)
        if remembered and remembered.get("id") == ident and isinstance(remembered.get("sha256"), str):
            return remembered["sha256"]
        started = self._clock()
        digest = sha256_file(Path(real))
        self.hashed.append(Path(real))
        after = os.stat(real)
        settled = started - max(after.st_mtime_ns, after.st_ctime_ns) / 1e9 >= RACY_WINDOW_S
        if _identity(after) == ident and settled:
            with self._lock:
                memo = self._load()
                memo[real] = {"id": ident, "sha256": digest}
                self._save(memo)
        return digest

    def _load(self) -> dict[str, dict]:
        if self._memo is None:
            self._memo = {}
            if self.memo_path is not None:
                try:
                    data = json.loads(self.memo_path.read_text())
                    if isinstance(data, dict) and data.get("format") == 1 and isinstance(data.get("files"), dict):
                        self._memo = dict(data["files"])
                except (OSError, ValueError):
                    pass
        return self._memo

    def _save(self, memo: dict[str, dict]) -> None:
        if self.memo_path is None:
            return
        while len(memo) > MEMO_MAX_ENTRIES:
            memo.pop(next(iter(memo)))
        from ttspilot.accel.cache import CacheWriteError, atomic_write_json

        try:
            self.memo_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.memo_path, {"format": 1, "files": memo})
        except (OSError, CacheWriteError) as exc:  # the memo is an optimisation; never fail a start on it
            log.debug("hash memo not saved at %s: %s", self.memo_path, exc)


_hashers: dict[Path, FileHasher] = {}
_hashers_lock = threading.Lock()


def hasher_for(cache_dir: Path) -> FileHasher:
    """One shared hasher per cache directory, so pooled sessions hash each file once."""
    key = Path(os.path.abspath(cache_dir))
    with _hashers_lock:
        if key not in _hashers:
            _hashers[key] = FileHasher(key / MEMO_FILENAME)
        return _hashers[key]


# CPU flags that change what ONNX Runtime's CPU kernels and graph transformers produce
# (MLAS picks kernels and NCHWc block sizes by instruction set).
_X86_FLAGS = (
    "sse4_1",
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512dq",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)
_ARM_FLAGS = ("asimd", "fphp", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2", "sme")


@dataclass(frozen=True)
class CpuFeatures:
    machine: str  # platform.machine(), e.g. x86_64, aarch64
    flags: tuple[str, ...]  # the relevant subset, sorted
    level: str  # a short readable label for cache names: avx512, avx2, neon, ...

    @property
    def tag(self) -> str:
        return f"{self.machine}-{self.level}"


def cpu_level(machine: str, flags: set[str] | tuple[str, ...]) -> str:
    flags = set(flags)
    if machine.lower() in ("x86_64", "amd64", "i386", "i686"):
        for level, needed in (
            ("amx", {"amx_tile"}),
            ("avx512", {"avx512f", "avx512bw", "avx512vl"}),
            ("avx2", {"avx2", "fma"}),
            ("avx", {"avx"}),
            ("sse4", {"sse4_1"}),
        ):
            if needed <= flags:
                return level
        return "x86"
    if machine.lower() in ("aarch64", "arm64"):
        for level, needed in (("sve2", {"sve2"}), ("sve", {"sve"}), ("neon-dot", {"asimddp"})):
            if needed <= flags:
                return level
        return "neon"
    return "generic"


def cpu_features(flags: set[str] | None = None, machine: str | None = None) -> CpuFeatures:
    machine = machine or platform.machine() or "unknown"
    found = set(cpuinfo_flags(read_cpuinfo())) if flags is None else set(flags)
    relevant = tuple(sorted(f for f in found if f in _X86_FLAGS or f in _ARM_FLAGS))
    return CpuFeatures(machine, relevant, cpu_level(machine, found))


@lru_cache(maxsize=1)
def local_cpu_features() -> CpuFeatures:
    """This machine's CpuFeatures, read once per process."""
    return cpu_features()


def onnxruntime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def sm_tag(compute_capability: str | float) -> str:
    """Compute capability as it appears in cache names: "8.9" -> "sm89" (never a fixed "mygpu")."""
    return "sm" + str(compute_capability).replace(".", "")
