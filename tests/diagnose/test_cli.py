"""diagnose_gpu.py as a real child process: fast, no crash, no FAIL, and with NVML faked absent
(tests/diagnose/without_gpu.py) the cpu tier recommended, on a machine with a GPU as well as without."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.support import REPO, free_port
from ttspilot.config import ServerSettings
from ttspilot.diagnose import cli
from ttspilot.diagnose.registry import CHECK_NAMES

MAX_SECONDS = 20.0


def diagnose(*args: str, env: dict[str, str] | None = None,
             gpu: str = "as is") -> tuple[subprocess.CompletedProcess, float]:
    """Run diagnose_gpu.py; gpu="absent" fakes NVML finding no driver (FakeNvml), whatever this machine has."""
    command = ["-m", "tests.diagnose.without_gpu"] if gpu == "absent" else [str(REPO / "diagnose_gpu.py")]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *command, *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env={**os.environ, **(env or {})})
    return done, time.perf_counter() - started


@pytest.fixture(scope="module")
def json_run() -> tuple[subprocess.CompletedProcess, float]:
    return diagnose("--json", "--port", str(free_port()), gpu="absent")


def test_report_without_a_gpu(json_run):
    done, seconds = diagnose("--port", str(free_port()), env={"NO_COLOR": ""}, gpu="absent")
    assert done.returncode == 0, done.stdout + done.stderr
    assert seconds < MAX_SECONDS
    assert "\x1b[" not in done.stdout  # not a terminal: no colour
    for name in CHECK_NAMES:
        assert f" {name} " in done.stdout
    assert "Recommended tier: cpu (no usable GPU" in done.stdout
    assert "Summary:" in done.stdout and " 0 FAIL" in done.stdout


def test_json_without_a_gpu(json_run):
    done, seconds = json_run
    assert done.returncode == 0, done.stdout + done.stderr
    assert seconds < MAX_SECONDS
    document = json.loads(done.stdout)
    checks = {check["name"]: check for check in document["checks"]}
    assert list(checks) == list(CHECK_NAMES)
    assert document["exit_code"] == 0 and document["summary"]["FAIL"] == 0
    assert document["recommended_tier"]["tier"] == "cpu"
    assert checks["nvidia"]["status"] == "SKIP" and "NVML library not found" in checks["nvidia"]["detail"]
    for needs_a_gpu in ("ort_cuda", "ort_tensorrt", "tensorrt"):  # nothing to try without a visible GPU
        assert checks[needs_a_gpu]["status"] == "SKIP", checks[needs_a_gpu]
    onnxruntime = checks["onnxruntime"]
    assert onnxruntime["status"] == "PASS"
    assert onnxruntime["data"]["cpu_run"]["nodes"] == {"diagnose_add": "CPUExecutionProvider",
                                                       "diagnose_relu": "CPUExecutionProvider"}
    assert all(check["fix"] for check in document["checks"] if check["status"] != "PASS")


def test_one_check_only():
    done, _ = diagnose("--json", "--check", "onnxruntime")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert [check["name"] for check in document["checks"]] == ["onnxruntime"]
    assert document["options"]["checks"] == ["onnxruntime"]


def test_help_lists_every_check(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in CHECK_NAMES)


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--check", "nope"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_defaults_come_from_the_server_settings():
    args = cli.build_parser().parse_args([])
    assert (args.host, args.port, args.model_dir) == (ServerSettings().host, ServerSettings().port, None) == \
        ("127.0.0.1", 9234, None)


def test_a_failing_check_exits_1_and_a_broken_tool_exits_2(monkeypatch, capsys):
    with socket_taken() as port:
        assert cli.main(["--check", "port", "--port", str(port), "--no-color"]) == 1
    assert "FAIL" in capsys.readouterr().out

    def broken(*args, **kwargs):
        raise RuntimeError("registry broken")

    monkeypatch.setattr(cli, "run_checks", broken)
    assert cli.main(["--check", "port"]) == 2
    assert "could not run: RuntimeError: registry broken" in capsys.readouterr().err


class socket_taken:
    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        return self.sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.sock.close()


def test_a_broken_onnxruntime_is_diagnosed_not_crashed_on(tmp_path):
    """onnxruntime 1.18 under NumPy 2 dies on import; the tool must still run every check and name the fix."""
    fake = tmp_path / "onnxruntime"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "import sys\n"
        "print('A module that was compiled using NumPy 1.x cannot be run in NumPy 2.0.0', file=sys.stderr)\n"
        "print('AttributeError: _ARRAY_API not found', file=sys.stderr)\n"
        "raise ImportError('numpy.core.multiarray failed to import')\n"
    )
    done, _ = diagnose("--json", "--port", str(free_port()), env={"PYTHONPATH": str(tmp_path)}, gpu="absent")
    assert done.returncode == 1, done.stdout + done.stderr
    checks = {check["name"]: check for check in json.loads(done.stdout)["checks"]}
    assert not any(check["data"].get("crashed") for check in checks.values())
    assert checks["onnxruntime"]["status"] == "FAIL"
    assert "compiled against NumPy 1.x" in checks["onnxruntime"]["detail"]
    assert checks["onnxruntime"]["fix"].startswith('pip install "numpy<2"')
    assert checks["model"]["status"] == "PASS"  # the voice is fine; only the runtime is broken
    assert checks["cache"]["status"] == "SKIP"
