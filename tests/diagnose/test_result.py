"""Findings always carry a fix when not PASS; merging keeps the worst status and its fixes."""

from __future__ import annotations

import pytest

from ttspilot.diagnose.result import CheckResult, Finding, Status, failed, merge, passed, skipped, warned


@pytest.mark.parametrize("status", [Status.WARN, Status.FAIL, Status.SKIP])
def test_a_finding_that_is_not_pass_must_say_how_to_fix_it(status):
    with pytest.raises(ValueError, match="needs a fix"):
        Finding(status, "broken", None)


def test_merge_keeps_the_worst_status_and_only_its_fixes():
    merged = merge([passed("a ok", x=1), warned("b slow", "speed it up"), failed("c broken", "repair c"),
                    skipped("d n/a", "enable d")], y=2)
    assert merged.status is Status.FAIL
    assert merged.detail.splitlines() == ["a ok", "b slow", "c broken", "d n/a"]
    assert merged.fix == "repair c"
    assert merged.data == {"x": 1, "y": 2}


def test_merge_of_pass_and_skip_passes_without_a_fix():
    merged = merge([skipped("n/a", "enable"), passed("fine")])
    assert (merged.status, merged.fix) == (Status.PASS, None)


def test_check_result_serialises_status_as_text():
    result = CheckResult.of("port", failed("busy", "kill it", port=1), area="network", seconds=0.12345)
    assert result.to_dict() == {"name": "port", "area": "network", "status": "FAIL", "detail": "busy",
                                "fix": "kill it", "seconds": 0.123, "data": {"port": 1}}
