"""The generic cache: keys, manifests, validation, atomic publish, locking, and clear write errors."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.accel.accel_support import make_read_only, make_writable, subprocess_env
from ttspilot.accel import cache as cache_module
from ttspilot.accel.cache import (
    MANIFEST,
    CacheDiskFull,
    CacheKey,
    CacheNotAFolder,
    CacheReadOnly,
    atomic_write_bytes,
    check_entry,
    ensure_entry,
    ensure_free_space,
    entry_path,
    explained_os_errors,
    scan,
)
from ttspilot.accel.fingerprint import FileHasher

HERE = Path(__file__).parent
KEY = CacheKey(
    "cpu-graph",
    "en_US-joe-medium",
    {"format": 1, "onnxruntime": "1.31.1", "source_sha256": "ab" * 32},
    ("ort1.31.1", "x86_64-avx2", "srcabababab"),
)


def write_artifact(staging: Path, data: bytes = b"optimized graph") -> str:
    (staging / "model.onnx").write_bytes(data)
    return "session"


def leftovers(root: Path, key: CacheKey = KEY) -> list[str]:
    kind_dir = root / key.kind
    return sorted(p.name for p in kind_dir.iterdir() if not p.name.endswith(".lock")) if kind_dir.exists() else []


def test_name_is_readable_and_carries_a_digest_of_every_field():
    assert KEY.name == f"en_US-joe-medium--ort1.31.1-x86_64-avx2-srcabababab-{KEY.digest[:8]}"
    other = CacheKey(KEY.kind, KEY.stem, {**KEY.fields, "cpu_flags": "avx2"}, KEY.tags)
    assert other.name != KEY.name  # same readable tags, different validity -> different entry


def test_build_then_hit(tmp_path):
    hasher = FileHasher(None)
    built = ensure_entry(tmp_path, KEY, write_artifact, hasher)
    assert (built.status, built.reason, built.value) == ("built", "missing", "session")
    manifest = json.loads((built.path / MANIFEST).read_text())
    assert manifest["key"] == {"kind": "cpu-graph", **KEY.fields}
    assert manifest["files"]["model.onnx"]["size"] == len(b"optimized graph")
    again = ensure_entry(tmp_path, KEY, lambda staging: pytest.fail("must not rebuild"), hasher)
    assert (again.status, again.value) == ("hit", None)
    assert leftovers(tmp_path) == [KEY.name]


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda entry: (entry / "model.onnx").write_bytes(b"optimized"), "truncated or replaced"),
        (lambda entry: (entry / "model.onnx").write_bytes(b"OPTIMIZED GRAPH"), "corrupted"),
        (lambda entry: (entry / "model.onnx").unlink(), "model.onnx is missing"),
        (lambda entry: (entry / MANIFEST).write_text("{"), "manifest missing or unreadable"),
    ],
)
def test_damaged_entry_is_rebuilt_not_trusted(tmp_path, damage, reason):
    hasher = FileHasher(None)
    entry = ensure_entry(tmp_path, KEY, write_artifact, hasher).path
    damage(entry)
    assert not check_entry(entry, KEY, FileHasher(None)).valid
    outcome = ensure_entry(tmp_path, KEY, write_artifact, FileHasher(None))
    assert outcome.status == "rebuilt"
    assert reason in outcome.reason
    assert check_entry(entry, KEY, FileHasher(None)).valid


def test_foreign_manifest_is_rebuilt_with_the_difference_named(tmp_path):
    entry = ensure_entry(tmp_path, KEY, write_artifact, FileHasher(None)).path
    manifest = json.loads((entry / MANIFEST).read_text())
    manifest["key"]["onnxruntime"] = "1.30.0"
    (entry / MANIFEST).write_text(json.dumps(manifest))
    outcome = ensure_entry(tmp_path, KEY, write_artifact, FileHasher(None))
    assert outcome.status == "rebuilt"
    assert "onnxruntime 1.30.0 (here 1.31.1)" in outcome.reason


def test_force_rebuilds_a_valid_entry(tmp_path):
    ensure_entry(tmp_path, KEY, write_artifact, FileHasher(None))
    outcome = ensure_entry(tmp_path, KEY, lambda s: write_artifact(s, b"new"), FileHasher(None), force=True)
    assert (outcome.status, outcome.reason) == ("rebuilt", "forced")
    assert (outcome.path / "model.onnx").read_bytes() == b"new"


def test_failed_build_leaves_nothing_behind(tmp_path):
    def broken(staging: Path) -> None:
        (staging / "model.onnx").write_bytes(b"half written")
        raise ValueError("optimizer crashed")

    with pytest.raises(ValueError, match="optimizer crashed"):
        ensure_entry(tmp_path, KEY, broken, FileHasher(None))
    assert leftovers(tmp_path) == []


def test_failed_rebuild_keeps_nothing_untrustworthy(tmp_path):
    entry = ensure_entry(tmp_path, KEY, write_artifact, FileHasher(None)).path
    (entry / "model.onnx").write_bytes(b"x")  # now invalid

    def broken(staging: Path) -> None:
        raise RuntimeError("no luck")

    with pytest.raises(RuntimeError):
        ensure_entry(tmp_path, KEY, broken, FileHasher(None))
    assert leftovers(tmp_path) == [KEY.name]  # the old entry stays, still invalid, never loaded
    assert not check_entry(entry, KEY, FileHasher(None)).valid


def test_build_that_writes_nothing_is_an_error(tmp_path):
    with pytest.raises(cache_module.CacheError, match="produced no file"):
        ensure_entry(tmp_path, KEY, lambda staging: None, FileHasher(None))
    assert leftovers(tmp_path) == []


def test_atomic_write_failure_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "plan.bin"

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module.os, "fsync", disk_full)  # fault injection at the last step before rename
    with pytest.raises(CacheDiskFull, match="no space left on device"):
        atomic_write_bytes(target, b"data" * 100)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "plan.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.bin"]


def test_real_enospc_is_explained(tmp_path):
    with pytest.raises(CacheDiskFull) as caught, explained_os_errors(tmp_path), open("/dev/full", "wb") as handle:
        handle.write(b"x")
        handle.flush()
    message = str(caught.value)
    assert "\n" not in message
    assert "ENOSPC" in message and "XDG_CACHE_HOME" in message


def test_refuses_a_build_that_cannot_fit(tmp_path):
    with pytest.raises(CacheDiskFull, match="MiB needed"):
        ensure_free_space(tmp_path, 1 << 62)


def test_read_only_cache_dir_gives_a_clear_error(read_only_dir):
    with pytest.raises(CacheReadOnly) as caught:
        ensure_entry(read_only_dir, KEY, write_artifact, FileHasher(None))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"cache folder {read_only_dir} is not writable (")
    assert ".lock" not in message


def test_an_unwritable_lock_file_is_named_as_the_lock_of_its_folder(tmp_path):
    kind_dir = tmp_path / KEY.kind
    kind_dir.mkdir()
    lock = cache_module.lock_path(tmp_path, KEY)
    lock.touch()
    if not make_read_only(lock):
        pytest.skip("cannot make a read-only file here")
    try:
        with pytest.raises(CacheReadOnly) as caught:
            ensure_entry(tmp_path, KEY, write_artifact, FileHasher(None))
    finally:
        make_writable(lock)
    message = str(caught.value)
    assert message.startswith(f"cache folder {kind_dir} cannot be locked: its lock file {lock.name} is not writable (")
    assert "delete that lock file" in message and "\n" not in message


@pytest.mark.parametrize("in_the_way", [".", "cpu-graph"], ids=["cache root", "kind folder"])
def test_a_file_where_a_cache_folder_belongs_is_named(tmp_path, in_the_way):
    root = tmp_path / "cache"
    blocker = (root / in_the_way).resolve()
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    with pytest.raises(CacheNotAFolder) as caught:
        ensure_entry(root, KEY, write_artifact, FileHasher(None))
    message = str(caught.value)
    assert message.startswith(f"{blocker} is a file, but ttspilot needs a cache folder there (")
    assert "move or delete that file" in message and "\n" not in message
    assert blocker.read_text() == "not a folder"  # never removed for the operator


def opaque_failure(staging: Path, size: int) -> None:
    """A build that, like ONNX Runtime, reports a failed write in its own words, without an errno."""
    try:
        (staging / "model.onnx").write_bytes(b"\0" * size)
    except OSError:
        raise RuntimeError("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Protobuf serialization failed.") from None


def test_file_size_limit_during_a_build_is_disk_full(tmp_path):
    """RLIMIT_FSIZE makes writes fail with EFBIG (Python ignores SIGXFSZ); here in a child process."""
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from tests.accel.test_cache import KEY, opaque_failure\n"
        "from ttspilot.accel.cache import CacheDiskFull, ensure_entry\n"
        "from ttspilot.accel.fingerprint import FileHasher\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))\n"
        "try:\n"
        "    ensure_entry(Path(sys.argv[1]), KEY, lambda s: opaque_failure(s, 4 << 20), FileHasher(None),\n"
        "                 needed_bytes=4 << 20)\n"
        "except CacheDiskFull as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                          env=subprocess_env(), cwd=HERE.parents[1], timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "disk full: file size limit reached (EFBIG)" in done.stdout and "ulimit -f" in done.stdout
    assert leftovers(tmp_path) == []


@pytest.fixture
def small_disk(tmp_path):
    """A real 4 MiB file system (tmpfs); mounting needs root, so elsewhere the test is skipped."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def test_a_disk_that_fills_during_the_build_is_disk_full(small_disk):
    def fill_then_build(staging: Path) -> None:
        (small_disk / "another-program.bin").write_bytes(b"\0" * (3 << 20))  # takes the space mid-build
        opaque_failure(staging, 2 << 20)

    with pytest.raises(CacheDiskFull) as caught:
        ensure_entry(small_disk / "cache", KEY, fill_then_build, FileHasher(None), needed_bytes=2 << 20)
    assert "disk full: no space left on device (ENOSPC)" in str(caught.value)
    assert leftovers(small_disk / "cache") == []


def test_an_opaque_failure_with_room_to_spare_keeps_its_own_words(tmp_path):
    with pytest.raises(RuntimeError, match="INVALID_PROTOBUF"):
        ensure_entry(tmp_path, KEY, lambda staging: opaque_failure(staging / "missing-folder", 1), FileHasher(None),
                     needed_bytes=1 << 20)
    assert leftovers(tmp_path) == []


def test_valid_entry_in_a_read_only_dir_is_still_used(tmp_path):

    root = tmp_path / "cache"
    ensure_entry(root, KEY, write_artifact, FileHasher(None))
    kind_dir = root / KEY.kind
    if not make_read_only(kind_dir):
        pytest.skip("cannot make a read-only directory here")
    try:
        outcome = ensure_entry(root, KEY, lambda s: pytest.fail("must not build"), FileHasher(None))
        assert outcome.status == "hit"
    finally:
        make_writable(kind_dir)


def _start_workers(tmp_path: Path, modes: list[str]) -> tuple[list[subprocess.Popen], Path, Path]:
    root, go, log_file = tmp_path / "cache", tmp_path / "go", tmp_path / "builds.log"
    workers = [
        subprocess.Popen(
            [sys.executable, str(HERE / "lock_worker.py"), str(root), str(go), str(log_file), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(),
        )
        for mode in modes
    ]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
    go.touch()
    return workers, root, log_file


def test_two_processes_build_the_same_entry_once(tmp_path):
    from tests.accel.lock_worker import KEY as WORKER_KEY

    workers, root, log_file = _start_workers(tmp_path, ["normal", "normal"])
    statuses = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        statuses.append(out.strip().splitlines()[-1])
    assert len(log_file.read_text().splitlines()) == 1  # exactly one real build
    assert sorted(statuses) == ["built", "hit"]
    entry = entry_path(root, WORKER_KEY)
    assert check_entry(entry, WORKER_KEY, FileHasher(None)).valid
    assert (entry / "artifact.bin").read_bytes() == b"compiled" * 1000


def test_build_killed_midway_leaves_no_entry_and_is_cleaned_up(tmp_path):
    from tests.accel.lock_worker import KEY as WORKER_KEY

    workers, root, _ = _start_workers(tmp_path, ["crash"])
    workers[0].communicate(timeout=60)
    assert workers[0].returncode == 9
    kind_dir = root / WORKER_KEY.kind
    assert not entry_path(root, WORKER_KEY).exists()
    assert [p.name for p in kind_dir.iterdir() if ".build-" in p.name]  # the dead build's staging dir

    outcome = ensure_entry(root, WORKER_KEY, lambda s: (s / "artifact.bin").write_bytes(b"ok"), FileHasher(None))
    assert outcome.status == "built"
    assert [p.name for p in kind_dir.iterdir() if not p.name.endswith(".lock")] == [WORKER_KEY.name]


def test_scan_lists_entries_with_manifests(tmp_path):
    ensure_entry(tmp_path, KEY, write_artifact, FileHasher(None))
    listed = scan(tmp_path)
    assert [(e.kind, e.path.name, e.manifest["name"]) for e in listed] == [("cpu-graph", KEY.name, KEY.name)]
    assert listed[0].size_bytes > len(b"optimized graph")  # artifact + manifest


def test_memo_never_outlives_an_in_place_rewrite(tmp_path):
    """End to end: a memoized artifact digest cannot hide corruption written afterwards."""

    def hasher_clock():  # files written by the test count as settled
        return time.time() + 60

    memo = tmp_path / "memo.json"
    entry = ensure_entry(tmp_path / "c", KEY, write_artifact, FileHasher(memo, clock=hasher_clock)).path
    assert check_entry(entry, KEY, FileHasher(memo, clock=hasher_clock)).valid  # digest now memoized
    artifact = entry / "model.onnx"
    stat = artifact.stat()
    artifact.write_bytes(b"OPTIMIZED GRAPH")  # same size
    os.utime(artifact, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old mtime put back
    assert not check_entry(entry, KEY, FileHasher(memo, clock=hasher_clock)).valid  # ctime moved


def test_lock_held_too_long_is_a_clear_error(tmp_path):
    from filelock import FileLock

    from ttspilot.accel.cache import CacheLockTimeout, lock_path

    (tmp_path / KEY.kind).mkdir()
    holder = FileLock(str(lock_path(tmp_path, KEY)))
    with holder, pytest.raises(CacheLockTimeout, match="another process has been building"):
        ensure_entry(tmp_path, KEY, write_artifact, FileHasher(None), lock_timeout=0.2)
    assert leftovers(tmp_path) == []
