"""Text and JSON rendering, colour rules and exit codes."""

from __future__ import annotations

import io
import json

from ttspilot.diagnose.registry import Recommendation
from ttspilot.diagnose.report import exit_code, render_json, render_text, to_document, use_color
from ttspilot.diagnose.result import CheckResult, failed, passed, skipped, warned

RESULTS = [
    CheckResult.of("os", passed("Linux 6.8 x86_64"), area="system"),
    CheckResult.of("nvidia", skipped("no NVIDIA driver", "install the driver"), area="gpu"),
    CheckResult.of("ram", warned("1.0 of 2.0 GB available\nsecond line", "add memory"), area="system"),
    CheckResult.of("port", failed("127.0.0.1:9234 is already in use", "kill 12\nor --port 9235"), area="network"),
]
REC = Recommendation("cpu", "no usable GPU: NVML library not found")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color():
    assert use_color(Tty(), {}) is True
    assert use_color(io.StringIO(), {}) is False
    assert use_color(Tty(), {"NO_COLOR": "1"}) is False
    assert use_color(Tty(), {"TERM": "dumb"}) is False
    assert use_color(Tty(), {}, allowed=False) is False


def test_plain_report_has_the_table_fixes_summary_and_tier():
    text = render_text(RESULTS, REC, color=False, header="ttspilot diagnose", seconds=1.25)
    assert "\x1b[" not in text
    lines = text.splitlines()
    assert lines[0] == "ttspilot diagnose"
    assert any(line.split()[:2] == ["FAIL", "port"] for line in lines)
    fixes = text.split("How to fix:\n")[1]
    assert fixes.index("FAIL port: kill 12") < fixes.index("WARN ram: add memory")
    assert "       or --port 9235" in fixes
    assert "Skipped, and how to enable:\n  SKIP nvidia: install the driver" in text
    assert "Summary: 1 PASS, 1 WARN, 1 FAIL, 1 SKIP in 1.2 s" in text
    assert text.rstrip().endswith("Recommended tier: cpu (no usable GPU: NVML library not found)")


def test_coloured_report_paints_the_status_column():
    text = render_text(RESULTS, REC, color=True)
    assert "\x1b[31;1mFAIL\x1b[0m" in text and "\x1b[32mPASS\x1b[0m" in text


def test_wrapping_for_a_narrow_terminal_keeps_every_word():
    long = CheckResult.of("disk", passed("word " * 40))
    text = render_text([long], None, color=False, wrap=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert text.count("word") == 40


def test_json_document():
    document = json.loads(render_json(to_document(RESULTS, REC, seconds=2.0, options={"port": 9234})))
    assert document["summary"] == {"PASS": 1, "WARN": 1, "FAIL": 1, "SKIP": 1}
    assert document["exit_code"] == 1
    assert document["recommended_tier"] == {"tier": "cpu", "reason": REC.reason, "passed_over": []}
    assert document["checks"][3] == {"name": "port", "area": "network", "status": "FAIL",
                                     "detail": "127.0.0.1:9234 is already in use", "fix": "kill 12\nor --port 9235",
                                     "seconds": 0.0, "data": {}}


def test_exit_codes():
    assert exit_code(RESULTS[:3]) == 0  # WARN and SKIP do not fail the run
    assert exit_code(RESULTS) == 1
