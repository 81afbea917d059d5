"""One cache mechanism for every compiled artifact: key -> entry directory + manifest + lock + atomic publish.

Layout under a cache root (`<model_dir>/.ttspilot/` or the user cache for the embedded voice):

    <root>/<kind>/<name>/            one entry: the artifact files and manifest.json
    <root>/<kind>/<name>.lock        held while the entry is built or replaced
    <root>/<kind>/.<name>.build-*/   staging directory of a build in progress

`name` carries what makes the entry valid in readable form plus a digest of every key
field, e.g. `en_US-joe-medium--ort1.31.1-x86_64-avx512-src3fa9c2d1-5e6f7a8b`. An entry is
trusted only when its manifest's key equals the expected key and every file it lists has
the recorded size and sha256; anything else is rebuilt, never loaded.

A build writes into a fresh staging directory (same file system), the manifest is
written last, and the whole directory is renamed into place, so a reader sees either no
entry, the old entry or the complete new one. A build that raises leaves nothing behind; when
it raised in a library's own words, the file system is asked whether the disk was full, so a
disk that fills midway reads as disk full (ONNX Runtime alone says INVALID_PROTOBUF).
Builders hold a file lock: a second process waits, then finds the entry valid and reuses it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Generic, TypeVar

from filelock import FileLock, Timeout

from ttspilot.accel.fingerprint import FileHasher

log = logging.getLogger("ttspilot.accel")

MANIFEST = "manifest.json"
FORMAT = 1
DEFAULT_LOCK_TIMEOUT_S = 1800.0  # a TensorRT build can take many minutes

T = TypeVar("T")


class CacheError(Exception):
    """A cache problem an operator can act on; `str()` is one line."""


class CacheWriteError(CacheError):
    """The cache directory cannot be written."""

    def __init__(self, path: Path, message: str, code: int | None = None):
        self.path = Path(path)
        self.code = code
        super().__init__(message)


class CacheDiskFull(CacheWriteError):
    pass


class CacheReadOnly(CacheWriteError):
    pass


class CacheNotAFolder(CacheWriteError):
    """A file stands where a cache folder belongs."""


class CacheLockTimeout(CacheError):
    pass


# errno -> (what happened, what to do), for the writes that fail because the disk cannot take the data.
_FULL = {
    errno.ENOSPC: ("disk full: no space left on device", "free disk space"),
    errno.EDQUOT: ("disk full: quota exceeded", "free space within your quota"),
    errno.EFBIG: ("disk full: file size limit reached", "raise the file size limit (ulimit -f unlimited)"),
}
_READ_ONLY = {errno.EACCES, errno.EPERM, errno.EROFS}
_NOT_A_FOLDER = {errno.ENOTDIR, errno.EEXIST}


def _file_in_the_way(target: Path) -> Path | None:
    """The nearest existing path at or above `target` when it is a file, not a folder."""
    for candidate in (target, *target.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def write_error(path: Path, exc: OSError) -> CacheWriteError | None:
    """The operator-facing error for a failed cache write, or None when the errno is not one we explain.

    Disk full: ENOSPC, EDQUOT, EFBIG (ulimit -f). Read-only: EACCES, EPERM, EROFS, naming the
    folder (or the lock file, when that is what refuses). A file in a folder's place: ENOTDIR, EEXIST.
    """
    code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    target = Path(exc.filename) if exc.filename else Path(path)
    if exc.errno in _FULL:
        what, fix = _FULL[exc.errno]
        return CacheDiskFull(
            path,
            f"cache write failed at {path}: {what} ({code}); {fix}, or point XDG_CACHE_HOME / --model_dir "
            "at a larger disk",
            exc.errno,
        )
    if exc.errno in _NOT_A_FOLDER:
        blocker = _file_in_the_way(target)
        if blocker is None:
            return None
        return CacheNotAFolder(
            blocker,
            f"{blocker} is a file, but ttspilot needs a cache folder there ({code}); move or delete that file, "
            "or set XDG_CACHE_HOME / --model_dir to another directory",
            exc.errno,
        )
    if exc.errno in _READ_ONLY:
        blocker = next((p for p in (target, *target.parents) if p.exists()), target)
        if blocker.is_dir():
            message = f"cache folder {blocker} is not writable ({code}); fix its permissions"
        elif blocker.suffix == ".lock":
            message = (
                f"cache folder {blocker.parent} cannot be locked: its lock file {blocker.name} is not writable "
                f"({code}); delete that lock file or fix its permissions"
            )
        else:
            message = f"cache file {blocker} is not writable ({code}); delete it or fix its permissions"
        return CacheReadOnly(blocker, f"{message}, or set XDG_CACHE_HOME to a writable directory", exc.errno)
    return None


def disk_full_after_failure(folder: Path, size: int) -> CacheDiskFull | None:
    """Was the disk why a build failed? Libraries report a failed write in their own words (ONNX Runtime:
    INVALID_PROTOBUF), so reserve `size` bytes in `folder` and let the file system answer with an errno."""
    if not hasattr(os, "posix_fallocate"):  # macOS, Windows: no way to ask the file system
        return None
    probe = Path(folder) / f".space-check-{uuid.uuid4().hex[:8]}"
    try:
        with open(probe, "wb") as handle:
            os.posix_fallocate(handle.fileno(), 0, max(1, size))
    except OSError as exc:
        error = write_error(Path(folder), exc)
        return error if isinstance(error, CacheDiskFull) else None
    finally:
        probe.unlink(missing_ok=True)
    return None


@contextmanager
def explained_os_errors(path: Path) -> Iterator[None]:
    """Turn the OSErrors `write_error` explains, raised inside the block, into CacheWriteError."""
    try:
        yield
    except OSError as exc:
        mapped = write_error(path, exc)
        if mapped is None:
            raise
        raise mapped from exc


def atomic_write_bytes(path: Path, data: bytes | memoryview) -> None:
    """Write `data` to `path` through a temp file in the same directory and os.replace; nothing partial is ever visible."""
    path = Path(path)
    with explained_os_errors(path.parent):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def ensure_free_space(path: Path, needed_bytes: int) -> None:
    """Refuse to start a build that cannot fit, before spending minutes on it."""
    if needed_bytes <= 0:
        return
    with explained_os_errors(path):
        free = shutil.disk_usage(path).free
    if free < needed_bytes:
        raise CacheDiskFull(
            path,
            f"cache write refused at {path}: {free / 2**20:.0f} MiB free, about {needed_bytes / 2**20:.0f} MiB needed; "
            "free disk space or point XDG_CACHE_HOME / --model_dir at a larger disk",
            errno.ENOSPC,
        )


def _canonical(fields: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(fields), sort_keys=True))


@dataclass(frozen=True)
class CacheKey:
    """What an artifact is and what makes it valid. `tags` are the readable part of its name."""

    kind: str
    stem: str
    fields: Mapping[str, Any]
    tags: tuple[str, ...] = ()

    @property
    def canonical_fields(self) -> dict[str, Any]:
        return _canonical({"kind": self.kind, **self.fields})

    @property
    def digest(self) -> str:
        blob = json.dumps(self.canonical_fields, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    @property
    def name(self) -> str:
        safe_stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in self.stem) or "model"
        return f"{safe_stem}--{'-'.join((*self.tags, self.digest[:8]))}"


@dataclass(frozen=True)
class Validity:
    valid: bool
    reason: str  # "valid", or why the entry cannot be trusted
    manifest: dict | None = None
    corrupt: bool = False  # the key matches but a file is missing, truncated or altered


@dataclass(frozen=True)
class CacheOutcome(Generic[T]):
    """What `ensure_entry` did. status: hit (was valid), built (was missing), rebuilt (was invalid or forced)."""

    key: CacheKey
    path: Path
    status: str
    reason: str
    build_seconds: float = 0.0
    value: T | None = None  # what the builder returned, when this call built the entry

    @property
    def built(self) -> bool:
        return self.status in ("built", "rebuilt")


def entry_path(root: Path, key: CacheKey) -> Path:
    return Path(root) / key.kind / key.name


def lock_path(root: Path, key: CacheKey) -> Path:
    return Path(root) / key.kind / f"{key.name}.lock"


def read_manifest(entry: Path) -> dict | None:
    try:
        data = json.loads((Path(entry) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe_key_difference(cached: Mapping[str, Any], expected: Mapping[str, Any]) -> str:
    """One line naming the fields that differ, e.g. `onnxruntime 1.30.0 (here 1.31.1)`."""
    diffs = []
    for name in sorted(set(cached) | set(expected)):
        if cached.get(name) != expected.get(name):
            have, want = cached.get(name, "-"), expected.get(name, "-")
            if isinstance(have, str) and len(have) == 64 and isinstance(want, str):  # sha256
                have, want = have[:12], want[:12]
            diffs.append(f"{name} {have} (here {want})")
    return "; ".join(diffs) or "key differs"


def file_damage(entry: Path, files: Mapping[str, Mapping[str, Any]], hasher: FileHasher) -> str | None:
    """What is wrong with the entry's files against the size and sha256 its manifest records; None when nothing."""
    for rel, meta in files.items():
        path = Path(entry) / rel
        if not path.is_file():
            return f"{rel} is missing"
        size = path.stat().st_size
        if size != meta.get("size"):
            return f"{rel} is {size} bytes, manifest says {meta.get('size')} (truncated or replaced)"
        if hasher.sha256(path) != meta.get("sha256"):
            return f"{rel} content does not match its manifest sha256 (corrupted)"
    return None


def check_entry(entry: Path, key: CacheKey, hasher: FileHasher) -> Validity:
    """Is the entry at `entry` exactly what `key` describes, file for file?"""
    entry = Path(entry)
    if not entry.is_dir():
        return Validity(False, "missing")
    manifest = read_manifest(entry)
    if manifest is None:
        return Validity(False, "manifest missing or unreadable")
    if manifest.get("format") != FORMAT:
        return Validity(False, f"manifest format {manifest.get('format')!r} (here {FORMAT})", manifest)
    cached_key = manifest.get("key")
    if not isinstance(cached_key, dict) or cached_key != key.canonical_fields:
        return Validity(
            False,
            "built for another setup: " + describe_key_difference(cached_key or {}, key.canonical_fields),
            manifest,
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return Validity(False, "manifest lists no files", manifest)
    damage = file_damage(entry, files, hasher)
    if damage is not None:
        return Validity(False, damage, manifest, corrupt=True)
    return Validity(True, "valid", manifest)


def _artifact_files(staging: Path) -> dict[str, Path]:
    return {
        p.relative_to(staging).as_posix(): p for p in sorted(staging.rglob("*")) if p.is_file() and p.name != MANIFEST
    }


def size_on_disk(path: Path) -> int:
    """Bytes of the files under `path` as they are on disk now (not as a manifest says)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _clear_leftovers(kind_dir: Path, name: str) -> None:
    """Staging and trash directories of this entry left by a killed build; we hold its lock, so none is live."""
    for leftover in kind_dir.glob(f".{name}.*"):
        if leftover.is_dir():
            _remove_tree(leftover)


@contextmanager
def held_lock(lock_file: Path, what: str, timeout: float = DEFAULT_LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the file lock guarding the build of `what`; CacheLockTimeout naming the holder's lock past `timeout`."""
    with explained_os_errors(lock_file.parent):
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_file), timeout=timeout)
        try:
            lock.acquire()
        except Timeout as exc:
            raise CacheLockTimeout(
                f"another process has been building {what} for over {timeout:.0f} s "
                f"(it holds {lock.lock_file}); wait for it or stop it"
            ) from exc
    try:
        yield
    finally:
        lock.release()


def ensure_entry(
    root: Path,
    key: CacheKey,
    build: Callable[[Path], T],
    hasher: FileHasher,
    *,
    force: bool = False,
    needed_bytes: int = 0,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
    extra_manifest: Mapping[str, Any] | None = None,
) -> CacheOutcome[T]:
    """Return a valid entry for `key`, building it with `build(staging_dir)` when missing, invalid or forced.

    `build` writes the artifact files into the staging directory it is given and may return a
    value (e.g. the session it created), handed back in `CacheOutcome.value`. Raises
    CacheWriteError (read-only, disk full), CacheLockTimeout, or whatever `build` raises.
    """
    root = Path(root)
    target = entry_path(root, key)
    first_look = check_entry(target, key, hasher)
    if first_look.valid and not force:
        return CacheOutcome(key, target, "hit", "valid")

    kind_dir = target.parent
    with held_lock(lock_path(root, key), target.name, lock_timeout):
        current = check_entry(target, key, hasher)
        if current.valid and not force:
            # Someone else built it while we waited for the lock.
            return CacheOutcome(key, target, "hit", "built by another process while waiting")
        status = "rebuilt" if target.exists() else "built"
        reason = "forced" if force and current.valid else current.reason
        _clear_leftovers(kind_dir, key.name)
        ensure_free_space(kind_dir, needed_bytes)
        staging = kind_dir / f".{key.name}.build-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        with explained_os_errors(kind_dir):
            staging.mkdir()
        try:
            started = time.perf_counter()
            with explained_os_errors(kind_dir):
                value = build(staging)
            seconds = time.perf_counter() - started
            files = _artifact_files(staging)
            if not files:
                raise CacheError(f"the {key.kind} build for {key.stem} produced no file")
            manifest = {
                "format": FORMAT,
                "kind": key.kind,
                "name": key.name,
                "key": key.canonical_fields,
                "files": {rel: {"size": p.stat().st_size, "sha256": hasher.sha256(p)} for rel, p in files.items()},
                "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "build_seconds": round(seconds, 3),
                **dict(extra_manifest or {}),
            }
            atomic_write_json(staging / MANIFEST, manifest)
            with explained_os_errors(kind_dir):
                if target.exists():
                    trash = kind_dir / f".{key.name}.trash-{uuid.uuid4().hex[:8]}"
                    os.replace(target, trash)
                    _remove_tree(trash)
                os.replace(staging, target)
        except CacheError:
            _remove_tree(staging)
            raise
        except Exception as exc:
            written = size_on_disk(staging)
            _remove_tree(staging)
            full = disk_full_after_failure(kind_dir, max(needed_bytes, written))
            if full is not None:
                raise full from exc
            raise
        except BaseException:
            _remove_tree(staging)
            raise
        return CacheOutcome(key, target, status, reason, seconds, value)


@dataclass(frozen=True)
class ListedEntry:
    kind: str
    path: Path
    manifest: dict | None
    size_bytes: int = field(default=0)


def scan(root: Path) -> list[ListedEntry]:
    """Every entry directory under `root` (valid or not), for `precompile_trt.py --list`."""
    root = Path(root)
    found: list[ListedEntry] = []
    if not root.is_dir():
        return found
    for kind_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for entry in sorted(p for p in kind_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            found.append(ListedEntry(kind_dir.name, entry, read_manifest(entry), size_on_disk(entry)))
    return found
