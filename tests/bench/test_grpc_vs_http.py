"""gRPC beside HTTP: one real server with --grpc_port, every way asked in turn, medians and ratios to HTTP."""

from __future__ import annotations

import json

import pytest

from ttspilot.bench.grpc_vs_http import main

pytestmark = pytest.mark.integration


def test_every_way_is_measured_against_http_of_its_kind(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--text", "short", "--rounds", "1", "--output_dir", str(out)]) == 0
    report = json.loads((out / "grpc_vs_http.json").read_text())
    rows = {row["way"]: row for row in report["rows"]}
    assert set(rows) == {"HTTP /inference_sft stream", "gRPC Speech stream", "gRPC CosyVoice/Inference",
                         "HTTP /inference_sft wav", "gRPC Speech wav"}
    for name, row in rows.items():
        assert row["rounds"] == 1 and 0 < row["first_audio_p50_s"] <= row["whole_request_p50_s"]
        if name.startswith("HTTP"):
            assert row["first_audio_vs_http"] == row["whole_request_vs_http"] == 1.0
    assert rows["gRPC Speech wav"]["kind"] == "whole" and rows["gRPC Speech stream"]["kind"] == "streamed"
    assert "whole_request_vs_http" in capsys.readouterr().out
    assert "gRPC on 127.0.0.1:" in (out / "logs" / "ttspilot.log").read_text()
