"""System checks: OS, Python version policy, usable CPUs, memory per engine, cache disk."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from ttspilot.diagnose.result import Status
from ttspilot.diagnose.system import cgroup_cpu_limit, check_cpu, check_disk, check_os, check_python, check_ram
from ttspilot.hardware import GB


def test_linux_passes_and_macos_is_cpu_only():
    assert check_os("Linux", "6.8.0", "x86_64", in_container=True).status is Status.PASS
    mac = check_os("Darwin", "23.0", "arm64", in_container=False)
    assert mac.status is Status.WARN and "cpu tier" in mac.detail
    assert "WSL2" in check_os("Windows", "10", "AMD64", in_container=False).fix


@pytest.mark.parametrize(
    ("version", "cuda_stack", "status"),
    [
        ((3, 9, 18), False, Status.FAIL),
        ((3, 10, 0), True, Status.PASS),
        ((3, 12, 4), True, Status.PASS),
        ((3, 13, 1), False, Status.PASS),
        ((3, 13, 1), True, Status.WARN),
        ((3, 14, 0), False, Status.WARN),
    ],
)
def test_python_versions(version, cuda_stack, status):
    finding = check_python(version, cuda_stack=cuda_stack, executable="/usr/bin/python3")
    assert finding.status is status
    if status is not Status.PASS:
        assert "python3.12 -m venv" in finding.fix


def test_python_313_warning_names_the_cuda_stacks():
    finding = check_python((3, 13, 0), cuda_stack=True)
    assert "torch" in finding.detail and "onnxruntime-gpu" in finding.detail


@pytest.mark.parametrize(("text", "cpus"), [("200000 100000", 2.0), ("50000 100000", 0.5), ("max 100000", None),
                                           ("garbage", None)])
def test_cgroup_cpu_limit(text, cpus):
    assert cgroup_cpu_limit(text) == cpus


def test_cpu_limited_by_cgroup_warns_although_the_host_has_many_cores():
    finding = check_cpu(64, flags=("avx2",), machine="x86_64", cgroup_limit=1.0)
    assert finding.status is Status.WARN
    assert "cgroup limit 1 CPUs" in finding.detail and "--cpus" in finding.fix
    assert finding.data["usable_cpus"] == 1.0


def test_cpu_without_avx2_warns_and_with_it_passes():
    assert check_cpu(8, flags=("avx",), machine="x86_64").status is Status.WARN
    assert check_cpu(8, flags=("avx", "avx2"), machine="x86_64").status is Status.PASS
    assert check_cpu(8, flags=("asimd",), machine="aarch64").status is Status.PASS


@pytest.mark.parametrize(
    ("available_gb", "engine", "status"),
    [(0.3, "piper", Status.FAIL), (0.8, "piper", Status.WARN), (2, "piper", Status.PASS),
     (3, "cosyvoice", Status.FAIL), (6, "cosyvoice", Status.WARN), (12, "cosyvoice", Status.PASS)],
)
def test_ram_thresholds_depend_on_the_engine(available_gb, engine, status):
    finding = check_ram(16 * GB, int(available_gb * GB), engine=engine)
    assert finding.status is status
    if status is not Status.PASS:
        assert "--memory" in finding.fix


def test_disk_checks_the_nearest_existing_folder(tmp_path: Path):
    seen = []

    def usage(path):
        seen.append(path)
        return SimpleNamespace(free=50 * GB)

    finding = check_disk([tmp_path / "not" / "yet" / ".ttspilot"], usage=usage)
    assert finding.status is Status.PASS and seen == [tmp_path]
    assert finding.data["disks"][0]["free_bytes"] == 50 * GB


@pytest.mark.parametrize(("free_gb", "status"), [(0.1, Status.FAIL), (1.0, Status.WARN), (5.0, Status.PASS)])
def test_disk_space_thresholds(tmp_path: Path, free_gb, status):
    finding = check_disk([tmp_path], usage=lambda path: SimpleNamespace(free=int(free_gb * GB)))
    assert finding.status is status
    if status is not Status.PASS:
        assert "XDG_CACHE_HOME" in finding.fix


def test_read_only_cache_folder_warns(tmp_path: Path):
    finding = check_disk([tmp_path], usage=lambda path: SimpleNamespace(free=50 * GB), writable=lambda path: False)
    assert finding.status is Status.WARN and "not writable" in finding.detail
    assert "XDG_CACHE_HOME" in finding.fix
