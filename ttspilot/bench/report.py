"""Turn outcomes into rows, grades, a recommendation, a table, CSV/JSON files and a chart.

Grades are by median RTF: < 0.3 very fast, 0.3-0.7 fast, 0.7-1.0 acceptable, > 1.0 slow.
The recommendation is the fastest configuration that ran and passed the quality check; among
those within `TIE_MARGIN` of it, a named tier (one the launcher can start) wins.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from ttspilot.bench.quality import QualityCheck
from ttspilot.bench.runner import Outcome
from ttspilot.engines.base import EngineInfo

GRADE_BANDS: tuple[tuple[float, str], ...] = ((0.3, "very fast"), (0.7, "fast"), (1.0, "acceptable"))
TIE_MARGIN = 0.05  # RTFs within 5% count as a tie: run-to-run noise is about that on a quiet machine
PASSED, FAILED_QUALITY, REFERENCE = "PASSED", "FAILED QUALITY", "reference"


@dataclass(frozen=True)
class Row:
    """One configuration as the operator sees it; measurements are None unless it ran."""

    configuration: str
    tier: str
    status: str  # ran | skipped | failed
    grade: str
    quality: str = ""  # PASSED | FAILED QUALITY | reference; empty unless it ran
    note: str = ""  # why skipped or failed, the quality check's finding, or flags the engine left inactive
    load_s: float | None = None
    rtf_median: float | None = None
    rtf_p90: float | None = None
    first_audio_s: float | None = None  # median time to the first chunk of a streamed call
    streaming: bool | None = None  # the engine streams inside a sentence (first audio is a chunk of one)
    throughput: dict[int, float] = field(default_factory=dict)  # clients -> audio seconds per second
    peak_rss_mb: float | None = None
    peak_gpu_mb: float | None = None
    mel_distance_db: float | None = None
    duration_ratio: float | None = None
    effective: str = ""  # what the engine really ran (providers, active flags, sessions), from Engine.info()

    @property
    def failed_quality(self) -> bool:
        return self.quality == FAILED_QUALITY


@dataclass(frozen=True)
class Recommendation:
    configuration: str
    tier: str
    rtf_median: float
    reason: str


def grade(rtf: float) -> str:
    """The band's name; each band includes its lower bound, so 0.3 is fast and 1.0 is slow."""
    return next((name for limit, name in GRADE_BANDS if rtf < limit), "slow")


def build_rows(outcomes: list[Outcome], verdicts: Mapping[str, QualityCheck], reference: str | None) -> list[Row]:
    return [_row(outcome, verdicts.get(outcome.bench.label), reference) for outcome in outcomes]


def _row(outcome: Outcome, verdict: QualityCheck | None, reference: str | None) -> Row:
    bench, measured = outcome.bench, outcome.measurement
    if outcome.status != "ran" or measured is None:
        return Row(bench.label, bench.config.tier, outcome.status, outcome.status, note=outcome.reason)
    rtfs = [rtf for per_text in measured.rtf.values() for rtf in per_text]
    first_audio = [s for per_text in measured.first_audio_s.values() for s in per_text]
    rtf_median = statistics.median(rtfs)
    if bench.label == reference:
        quality = REFERENCE
    else:
        quality = PASSED if verdict is not None and verdict.passed else FAILED_QUALITY
    info = measured.engine_info
    inactive = [f"{flag} inactive: {reason}" for flag, reason in (info.inactive() if info else {}).items()]
    notes = ([verdict.reason] if verdict and quality != REFERENCE else []) + inactive
    return Row(
        bench.label, bench.config.tier, "ran",
        grade=FAILED_QUALITY if quality == FAILED_QUALITY else grade(rtf_median),
        quality=quality,
        note="; ".join(notes),
        load_s=measured.load_s,
        rtf_median=rtf_median,
        rtf_p90=float(np.percentile(rtfs, 90)),
        first_audio_s=statistics.median(first_audio),
        streaming=measured.streaming,
        throughput=dict(measured.throughput),
        peak_rss_mb=measured.peak_rss_mb,
        peak_gpu_mb=measured.peak_gpu_mb,
        mel_distance_db=verdict.mel_distance_db if verdict else None,
        duration_ratio=verdict.duration_ratio if verdict else None,
        effective=effective(info) if info else "",
    )


def effective(info: EngineInfo) -> str:
    """Engine.info() in one line: configurations with the same line run the same way."""
    active = [flag for flag, state in info.flags.items() if state.active]
    return (f"{'+'.join(info.providers) or 'unknown providers'}, active: {'+'.join(active) or 'none'}, "
            f"{info.concurrency} session(s)")


def recommend(rows: list[Row], *, launchable: bool = False) -> Recommendation | None:
    """The fastest row that ran and passed quality (`launchable`: named tiers only); None when none did.

    A named tier replaces a faster custom configuration when it is within `TIE_MARGIN`, or when the
    engine reports it runs exactly the same way (`effective`): on the CPU, `cpu` already loads the
    optimized graph that `cpu+jit` asks for, so any gap between them is noise.
    """
    eligible = [
        row for row in rows
        if row.status == "ran" and row.quality in (PASSED, REFERENCE) and not (launchable and row.tier == "custom")
    ]
    if not eligible:
        return None
    fastest = min(eligible, key=lambda row: row.rtf_median)
    pick = fastest
    if fastest.tier == "custom":
        twins = [row for row in eligible if row.tier != "custom" and row.effective == fastest.effective]
        ties = [row for row in eligible if row.tier != "custom" and row.rtf_median <= fastest.rtf_median * (1 + TIE_MARGIN)]
        pick = min(twins + ties, key=lambda row: row.rtf_median, default=fastest)
    reason = (
        f"lowest median RTF {pick.rtf_median:.3f} ({grade(pick.rtf_median)}) of {len(eligible)} configuration(s) "
        "that passed the quality check"
    )
    if pick is not fastest:
        why = (f"runs exactly as {fastest.configuration} here ({pick.effective})" if pick.effective == fastest.effective
               else f"within {TIE_MARGIN:.0%} of it")
        reason = (
            f"median RTF {pick.rtf_median:.3f} ({grade(pick.rtf_median)}): {fastest.configuration} measured "
            f"{fastest.rtf_median:.3f}, but {pick.configuration} {why}, and is a named tier the launcher can start"
        )
    failed = [row.configuration for row in rows if row.failed_quality]
    if failed:
        reason += f"; never recommended: {', '.join(failed)} (FAILED QUALITY)"
    return Recommendation(pick.configuration, pick.tier, pick.rtf_median, reason)


def first_audio_note(rows: list[Row]) -> str | None:
    """What "first audio s" measured: engines that stream inside a sentence yield a chunk of one."""
    ran = [row for row in rows if row.status == "ran"]
    if not ran:
        return None
    if all(row.streaming for row in ran):
        return ("first audio s: median time to the first chunk of a streamed call; the engine streams inside a "
                "sentence, so a sentence longer than one chunk starts before it is fully synthesized")
    return ("first audio s: median time to the first chunk of a streamed call; the engine yields whole segments, "
            "so that chunk is the first (short) segment")


def concurrency_levels(rows: list[Row]) -> list[int]:
    return sorted({clients for row in rows for clients in row.throughput})


def table(rows: list[Row]) -> str:
    """The operator's table; skipped and failed rows say so, their reasons follow in `reasons`."""
    levels = concurrency_levels(rows)
    headers = ["configuration", "tier", "load s", "RTF med", "RTF p90", "first audio s",
               *(f"audio s/s @{n}" for n in levels), "RSS MB", "GPU MB", "quality", "grade"]
    body = [
        [row.configuration, row.tier, row.load_s, row.rtf_median, row.rtf_p90, row.first_audio_s,
         *(row.throughput.get(n) for n in levels), row.peak_rss_mb, row.peak_gpu_mb, row.quality, row.grade]
        for row in rows
    ]
    return tabulate(body, headers=headers, floatfmt=".3g", missingval="-")


def reasons(rows: list[Row]) -> list[str]:
    """One line per distinct reason a row was skipped, failed or flagged, naming its rows."""
    by_reason: dict[str, list[str]] = {}
    for row in rows:
        if row.note and (row.status != "ran" or row.failed_quality or "inactive" in row.note):
            by_reason.setdefault(f"{row.grade}: {row.note}", []).append(row.configuration)
    return [f"{', '.join(names)} -- {why}" for why, names in by_reason.items()]


def frame(rows: list[Row]) -> pd.DataFrame:
    """One record per configuration, throughput spread into one column per client count."""
    levels = concurrency_levels(rows)
    records = []
    for row in rows:
        record: dict[str, Any] = {k: v for k, v in asdict(row).items() if k != "throughput"}
        record |= {f"throughput_at_{n}": row.throughput.get(n) for n in levels}
        records.append(record)
    return pd.DataFrame.from_records(records)


def write_files(data: pd.DataFrame, output_dir: Path, stem: str, summary: dict[str, Any]) -> list[Path]:
    """<stem>.csv (the rows) and <stem>.json (the summary plus the same rows under "rows")."""
    output_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = output_dir / f"{stem}.csv", output_dir / f"{stem}.json"
    data.to_csv(csv_path, index=False)
    json_path.write_text(json.dumps(summary | {"rows": json.loads(data.to_json(orient="records"))}, indent=2))
    return [csv_path, json_path]


LOAD_COLUMNS: dict[str, str] = {
    "api": "api", "clients": "clients", "stream": "stream", "requests": "requests", "errors": "errors",
    "requests_per_s": "req/s", "audio_s_per_s": "audio s/s", "latency_p50_s": "latency p50 s",
    "latency_p90_s": "p90 s", "latency_p99_s": "p99 s", "first_audio_p50_s": "first audio p50 s",
    "first_audio_p90_s": "first audio p90 s", "first_audio_p95_s": "p95 s", "stall_p50_s": "stall p50 s",
    "stall_max_s": "stall max s", "streams_stalled": "streams stalled",
}


def load_table(summaries: list[dict[str, Any]]) -> str:
    """Server mode's table, one line per client count."""
    body = [[summary[key] for key in LOAD_COLUMNS] for summary in summaries]
    return tabulate(body, headers=list(LOAD_COLUMNS.values()), floatfmt=".3g", missingval="-")


def write_chart(rows: list[Row], path: Path) -> str:
    """PNG of RTF (median, p90 whisker) and time to first audio per configuration that ran."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "chart skipped: matplotlib is not installed (pip install matplotlib)"
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # its font-cache notice is not the operator's business
    ran = [row for row in rows if row.status == "ran"]
    if not ran:
        return "chart skipped: no configuration ran"
    names = [row.configuration for row in ran]
    colours = ["tab:red" if row.failed_quality else "tab:blue" for row in ran]
    figure, (rtf_axis, audio_axis) = plt.subplots(1, 2, figsize=(11, 1.2 + 0.45 * len(ran)), sharey=True)
    medians = [row.rtf_median for row in ran]
    whiskers = [[0] * len(ran), [row.rtf_p90 - row.rtf_median for row in ran]]
    rtf_axis.barh(names, medians, xerr=whiskers, color=colours)
    for limit, _ in GRADE_BANDS:
        rtf_axis.axvline(limit, color="grey", linestyle=":", linewidth=1)
    rtf_axis.set_xlabel("RTF (median, whisker to p90; lower is faster)")
    audio_axis.barh(names, [row.first_audio_s for row in ran], color=colours)
    audio_axis.set_xlabel("time to first audio, streamed (s)")
    rtf_axis.invert_yaxis()
    figure.suptitle("ttspilot benchmark (red: FAILED QUALITY)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return f"chart: {path}"
