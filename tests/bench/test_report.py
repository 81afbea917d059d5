"""Report shape: grades, the recommendation rule, the table, CSV/JSON files and the optional chart."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import pandas as pd
import pytest

from ttspilot.bench.report import (
    FAILED_QUALITY,
    PASSED,
    REFERENCE,
    Row,
    first_audio_note,
    frame,
    grade,
    reasons,
    recommend,
    table,
    write_chart,
    write_files,
)


def ran(configuration: str, tier: str, rtf: float, quality: str = PASSED, effective: str = "") -> Row:
    return Row(configuration, tier, "ran", FAILED_QUALITY if quality == FAILED_QUALITY else grade(rtf), quality,
               load_s=1.0, rtf_median=rtf, rtf_p90=rtf * 1.2, first_audio_s=0.2, throughput={1: 1 / rtf, 2: 1.5 / rtf},
               peak_rss_mb=300.0, effective=effective or f"{configuration} engine")


ROWS = [
    Row("trt x1", "custom", "skipped", "skipped", note="no usable GPU: no GPU found"),
    Row("basic", "basic", "skipped", "skipped", note="no usable GPU: no GPU found"),
    ran("jit+fp16", "jit_fp16", 0.05, FAILED_QUALITY),
    ran("cpu", "cpu", 0.40, REFERENCE),
    ran("cpu+jit", "custom", 0.39),
]


@pytest.mark.parametrize(
    ("rtf", "expected"),
    [(0.1, "very fast"), (0.3, "fast"), (0.69, "fast"), (0.7, "acceptable"), (0.99, "acceptable"), (1.0, "slow"),
     (2.5, "slow")],
)
def test_grades_by_rtf(rtf, expected):
    assert grade(rtf) == expected


def test_recommendation_skips_failed_quality_and_prefers_a_named_tier_on_a_tie():
    best = recommend(ROWS)
    assert best.configuration == "cpu"  # cpu+jit is only 2.5% faster and not a tier the launcher can start
    assert "cpu+jit measured 0.390, but cpu within 5% of it" in best.reason
    assert "never recommended: jit+fp16 (FAILED QUALITY)" in best.reason
    clearly_faster = [*ROWS[:3], ran("cpu", "cpu", 0.40, REFERENCE), ran("cpu+jit", "custom", 0.2)]
    assert recommend(clearly_faster).configuration == "cpu+jit"
    assert recommend(clearly_faster, launchable=True).configuration == "cpu"
    assert recommend(ROWS[:3]) is None


def test_a_custom_configuration_that_runs_exactly_as_a_named_tier_gives_way_to_it():
    same = "CPUExecutionProvider, active: load_jit, 1 session(s)"
    rows = [ran("cpu", "cpu", 0.40, REFERENCE, same), ran("cpu+jit", "custom", 0.30, effective=same)]
    best = recommend(rows)
    assert best.configuration == "cpu" and f"runs exactly as cpu+jit here ({same})" in best.reason


def test_table_and_reasons_have_every_column_and_group_skips():
    text = table(ROWS)
    header = text.splitlines()[0]
    for column in ("configuration", "tier", "load s", "RTF med", "RTF p90", "first audio s", "audio s/s @1",
                   "audio s/s @2", "RSS MB", "GPU MB", "quality", "grade"):
        assert column in header
    assert len(text.splitlines()) == 2 + len(ROWS)
    assert reasons(ROWS)[0] == "trt x1, basic -- skipped: no usable GPU: no GPU found"


def test_csv_json_and_chart_are_written(tmp_path):
    csv_path, json_path = write_files(frame(ROWS), tmp_path, "results", {"recommendation": "cpu"})
    data = pd.read_csv(csv_path)
    assert list(data["configuration"]) == [row.configuration for row in ROWS]
    assert {"rtf_median", "throughput_at_1", "throughput_at_2", "quality", "grade", "note"} <= set(data.columns)
    summary = json.loads(json_path.read_text())
    assert summary["recommendation"] == "cpu" and len(summary["rows"]) == len(ROWS)
    assert summary["rows"][0]["rtf_median"] is None
    pytest.importorskip("matplotlib")
    assert write_chart(ROWS, tmp_path / "chart.png").startswith("chart: ")
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")


def test_first_audio_says_whether_the_engine_streams_inside_a_sentence():
    streaming = [replace(row, streaming=True) if row.status == "ran" else row for row in ROWS]
    assert "streams inside a sentence" in first_audio_note(streaming)
    assert "yields whole segments" in first_audio_note([replace(row, streaming=False) for row in ROWS])
    assert first_audio_note(ROWS[:2]) is None  # nothing ran
    assert {"first_audio_s", "streaming"} <= set(frame(streaming).columns)


def test_chart_is_skipped_with_a_message_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert "matplotlib is not installed" in write_chart(ROWS, tmp_path / "chart.png")
    assert not (tmp_path / "chart.png").exists()
