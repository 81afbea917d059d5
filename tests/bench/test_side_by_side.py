"""Side by side: two real servers started on loopback, loaded in turn, medians and ratios, both stopped."""

from __future__ import annotations

import json

import httpx
import pytest

from ttspilot.bench.side_by_side import main

pytestmark = pytest.mark.integration


def test_two_servers_streamed_side_by_side(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--server", "deadline=", "--server", "fifo=--scheduling fifo", "--clients", "1", "2", "--stream",
                 "--text", "short", "--duration", "1", "--rounds", "2", "--output_dir", str(out)]) == 0
    report = json.loads((out / "side_by_side.json").read_text())
    rows = {(row["server"], row["clients"]): row for row in report["rows"]}
    assert set(rows) == {("deadline", 1), ("fifo", 1), ("deadline", 2), ("fifo", 2)}
    for (server, _), row in rows.items():
        assert row["rounds"] == 2 and row["errors"] == 0 and row["audio_s_per_s"] > 0
        assert 0 < row["first_audio_p50_s"] <= row["first_audio_p95_s"] and row["stall_max_s"] >= 0
        assert row["throughput_ratio"] == 1.0 if server == "deadline" else row["throughput_ratio"] > 0
        assert row["first_audio_added_s"] == 0 if server == "deadline" else row["first_audio_added_s"] is not None
    assert report["servers"]["fifo"].endswith("fastapi_server.py --scheduling fifo")
    assert "throughput_ratio" in capsys.readouterr().out
    assert "scheduling: arrival order (fifo)" in (out / "logs" / "fifo.log").read_text()


def test_servers_are_stopped_even_when_one_fails_to_start(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--server", "good=", "--server", "bad=--tier no_such_tier", "--duration", "1", "--rounds", "1",
                 "--output_dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert "bad exited (2) before it was ready" in err
    good_url = next(line.split()[1] for line in err.splitlines() if line.startswith("good: http://127.0.0.1:"))
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{good_url}/health", timeout=2)


def test_one_server_is_not_a_comparison(capsys):
    with pytest.raises(SystemExit):
        main(["--server", "alone="])
    assert "at least two servers" in capsys.readouterr().err
