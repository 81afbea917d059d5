"""Source hashes are remembered only while the file on disk is provably the same one."""

from __future__ import annotations

import hashlib
import json
import time

from ttspilot.accel.fingerprint import FileHasher, cpu_features, cpu_level


def later(seconds: float = 60.0):
    """A clock running ahead, so files written by the test count as settled (outside the racy window)."""
    return lambda: time.time() + seconds


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_digest_is_remembered_across_hashers(tmp_path):
    model = tmp_path / "voice.onnx"
    model.write_bytes(b"weights" * 1000)
    memo = tmp_path / "memo.json"
    first = FileHasher(memo, clock=later())
    assert first.sha256(model) == sha(b"weights" * 1000)
    second = FileHasher(memo, clock=later())
    assert second.sha256(model) == sha(b"weights" * 1000)
    assert second.hashed == []  # answered from the memo, file not read


def test_rewritten_file_of_the_same_size_is_rehashed(tmp_path):
    model = tmp_path / "voice.onnx"
    model.write_bytes(b"a" * 4096)
    memo = tmp_path / "memo.json"
    FileHasher(memo, clock=later()).sha256(model)
    model.write_bytes(b"b" * 4096)  # same size, new content: mtime/ctime move
    again = FileHasher(memo, clock=later())
    assert again.sha256(model) == sha(b"b" * 4096)
    assert again.hashed == [model.resolve()]


def test_truncated_file_is_rehashed(tmp_path):
    model = tmp_path / "voice.onnx"
    model.write_bytes(b"abc" * 1000)
    memo = tmp_path / "memo.json"
    FileHasher(memo, clock=later()).sha256(model)
    with open(model, "r+b") as handle:
        handle.truncate(10)
    assert FileHasher(memo, clock=later()).sha256(model) == sha(b"abcabcabca")


def test_freshly_written_file_is_not_remembered(tmp_path):
    """A file changed within the racy window may change again without its timestamps moving."""
    model = tmp_path / "voice.onnx"
    model.write_bytes(b"fresh")
    memo = tmp_path / "memo.json"
    FileHasher(memo).sha256(model)
    assert not memo.exists() or str(model.resolve()) not in json.loads(memo.read_text())["files"]


def test_unreadable_memo_is_ignored(tmp_path):
    model = tmp_path / "voice.onnx"
    model.write_bytes(b"x" * 10)
    memo = tmp_path / "memo.json"
    memo.write_text("{not json")
    hasher = FileHasher(memo, clock=later())
    assert hasher.sha256(model) == sha(b"x" * 10)
    assert json.loads(memo.read_text())["format"] == 1  # replaced by a good one


def test_memo_entry_for_another_file_identity_is_not_trusted(tmp_path):
    model = tmp_path / "voice.onnx"
    model.write_bytes(b"real")
    memo = tmp_path / "memo.json"
    memo.write_text(
        json.dumps({"format": 1, "files": {str(model.resolve()): {"id": [0, 0, 4, 0, 0], "sha256": "0" * 64}}})
    )
    assert FileHasher(memo, clock=later()).sha256(model) == sha(b"real")


def test_cpu_levels():
    assert cpu_level("x86_64", {"avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl"}) == "avx512"
    assert cpu_level("x86_64", {"avx", "avx2", "fma"}) == "avx2"
    assert cpu_level("x86_64", {"sse4_1"}) == "sse4"
    assert cpu_level("aarch64", {"asimd", "asimddp"}) == "neon-dot"
    assert cpu_level("aarch64", {"asimd"}) == "neon"
    assert cpu_level("riscv64", set()) == "generic"


def test_cpu_features_keep_only_flags_that_change_kernels():
    features = cpu_features({"fpu", "avx2", "fma", "avx", "sse4_2", "hypervisor"}, machine="x86_64")
    assert features.flags == ("avx", "avx2", "fma", "sse4_2")
    assert features.tag == "x86_64-avx2"


def test_local_cpu_features_are_read():
    features = cpu_features()
    assert features.machine
    assert features.level


def test_cache_keys_and_the_hardware_probe_read_the_same_cpu_flags():
    from ttspilot.hardware import parse_cpu_flags, read_cpuinfo

    assert set(parse_cpu_flags(read_cpuinfo())) <= set(cpu_features().flags)
