"""Render check results: a readable table (coloured status on a terminal) or one JSON document."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import IO, Any

from tabulate import tabulate

import ttspilot
from ttspilot.diagnose.registry import Recommendation
from ttspilot.diagnose.result import CheckResult, Status

COLORS = {Status.PASS: "32", Status.WARN: "33", Status.FAIL: "31;1", Status.SKIP: "36"}
ORDER = (Status.PASS, Status.WARN, Status.FAIL, Status.SKIP)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CANNOT_RUN = 2


def use_color(stream: IO[str], environ: Mapping[str, str] | None = None, *, allowed: bool = True) -> bool:
    """Colour only on a terminal, never with NO_COLOR set (https://no-color.org) or TERM=dumb."""
    environ = os.environ if environ is None else environ
    if not allowed or environ.get("NO_COLOR") or environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(status: Status, color: bool) -> str:
    return f"\x1b[{COLORS[status]}m{status.value}\x1b[0m" if color else status.value


def exit_code(results: Sequence[CheckResult]) -> int:
    if any(result.data.get("crashed") for result in results):
        return EXIT_CANNOT_RUN
    return EXIT_FAILED if any(result.status is Status.FAIL for result in results) else EXIT_OK


def summary_counts(results: Sequence[CheckResult]) -> dict[str, int]:
    counts = Counter(result.status for result in results)
    return {status.value: counts.get(status, 0) for status in ORDER}


def render_text(results: Sequence[CheckResult], recommendation: Recommendation | None, *, color: bool,
                header: str = "", seconds: float | None = None, wrap: int | None = None) -> str:
    """`wrap`: terminal width to wrap the detail column to (None: no wrapping, for logs and pipes)."""
    detail_width = max(40, wrap - 30) if wrap else None
    rows = [[paint(r.status, color), r.name, r.detail] for r in results]
    table = tabulate(rows, headers=["STATUS", "CHECK", "DETAIL"], tablefmt="simple",
                     maxcolwidths=[None, None, detail_width], disable_numparse=True)
    out = [header, "", table] if header else [table]
    for title, statuses in (("How to fix", (Status.FAIL, Status.WARN)), ("Skipped, and how to enable", (Status.SKIP,))):
        lines = []
        for status in statuses:
            for r in results:
                if r.status is status and r.fix:
                    fix_lines = r.fix.splitlines()
                    lines.append(f"  {paint(status, color)} {r.name}: {fix_lines[0]}")
                    lines.extend(f"       {line}" for line in fix_lines[1:])
        if lines:
            out += ["", f"{title}:", *lines]
    counts = summary_counts(results)
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    out += ["", "Summary: " + ", ".join(f"{n} {paint(Status(s), color)}" for s, n in counts.items()) + took]
    if recommendation is not None:
        out.append(f"Recommended tier: {recommendation.tier} ({recommendation.reason})")
    return "\n".join(out) + "\n"


def environment_header(context_line: str) -> str:
    return (f"ttspilot {ttspilot.__version__} diagnose: {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}; {context_line}")


def to_document(results: Sequence[CheckResult], recommendation: Recommendation | None, *, seconds: float,
                options: dict[str, Any]) -> dict[str, Any]:
    return {
        "tool": "ttspilot diagnose",
        "version": ttspilot.__version__,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "options": options,
        "seconds": round(seconds, 3),
        "summary": summary_counts(results),
        "exit_code": exit_code(results),
        "recommended_tier": recommendation.to_dict() if recommendation else None,
        "checks": [result.to_dict() for result in results],
    }


def render_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, default=str) + "\n"
