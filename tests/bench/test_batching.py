"""The batching measurement runs on the embedded voice and reports both timings and their ratio."""

from __future__ import annotations

import re

from ttspilot.bench.batching import main


def test_batching_measurement_prints_both_timings_and_the_ratio(capsys):
    assert main(["--sentences", "2", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all("2 sentences one by one" in line for line in lines)
    for line in lines:
        alone, paired, ratio = map(float, re.findall(r"([\d.]+) s, in pairs ([\d.]+) s, batched / one by one = ([\d.]+)",
                                                     line)[0])
        assert alone > 0 and paired > 0 and abs(ratio - paired / alone) < 0.03
