"""What a check found (`Finding`) and the named, timed record the report shows (`CheckResult`).

A check function knows what it saw, not what it is called: it returns a `Finding`, and the
registry names and times it. A finding that is not PASS always carries a fix, so the operator
never reads a problem without the command that solves it; the constructors enforce that.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Status(str, Enum):
    PASS = "PASS"
    WARN = "WARN"  # works, but slower or less robust than it could be
    FAIL = "FAIL"  # something the tiers depend on is broken
    SKIP = "SKIP"  # not applicable here (no GPU, library not installed); the fix says how to enable it

    def __str__(self) -> str:
        return self.value


# How bad a status is when several findings are merged into one: SKIP < PASS < WARN < FAIL.
SEVERITY = {Status.SKIP: 0, Status.PASS: 1, Status.WARN: 2, Status.FAIL: 3}


@dataclass(frozen=True)
class Finding:
    status: Status
    detail: str  # one line per fact; the first line is the summary
    fix: str | None = None  # the command(s) that solve it; always set unless PASS
    data: dict[str, Any] = field(default_factory=dict)  # machine-readable facts for --json

    def __post_init__(self) -> None:
        if self.status is not Status.PASS and not self.fix:
            raise ValueError(f"a {self.status} finding needs a fix: {self.detail!r}")


def passed(detail: str, **data: Any) -> Finding:
    return Finding(Status.PASS, detail, None, data)


def warned(detail: str, fix: str, **data: Any) -> Finding:
    return Finding(Status.WARN, detail, fix, data)


def failed(detail: str, fix: str, **data: Any) -> Finding:
    return Finding(Status.FAIL, detail, fix, data)


def skipped(detail: str, fix: str, **data: Any) -> Finding:
    return Finding(Status.SKIP, detail, fix, data)


def merge(findings: Iterable[Finding], **data: Any) -> Finding:
    """One finding from several parts: the worst status, details and fixes in order (fixes of
    parts as bad as the result only, so a PASS part never adds noise to a FAIL's fix)."""
    parts = list(findings)
    if not parts:
        raise ValueError("merge needs at least one finding")
    worst = max((part.status for part in parts), key=SEVERITY.__getitem__)
    fixes = [part.fix for part in parts if part.status is worst and part.fix]
    merged_data: dict[str, Any] = {}
    for part in parts:
        merged_data.update(part.data)
    merged_data.update(data)
    detail = "\n".join(part.detail for part in parts)
    return Finding(worst, detail, "\n".join(dict.fromkeys(fixes)) or None, merged_data)


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    fix: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    area: str = ""
    seconds: float = 0.0

    @classmethod
    def of(cls, name: str, finding: Finding, *, area: str = "", seconds: float = 0.0) -> CheckResult:
        return cls(name, finding.status, finding.detail, finding.fix, dict(finding.data), area, seconds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "area": self.area,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
            "seconds": round(self.seconds, 3),
            "data": self.data,
        }
