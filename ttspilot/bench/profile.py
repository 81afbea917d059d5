"""The benchmark's verdict as a tuning profile, where start_optimized_server.py looks for it.

The profile is keyed by `tuning_fingerprint`: GPU names and compute capabilities, driver,
CPU, library versions, engine and a hash of the measured voice model, so a changed machine,
driver, library or voice never inherits old measurements. It is written only when the run
measured every tier the launcher would try here: a profile built from a subset would rank
tiers it never saw (a `cpu`-only run would push every GPU tier out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ttspilot.accel.fingerprint import hasher_for
from ttspilot.config import cache_dir_for
from ttspilot.engines import engine_class
from ttspilot.engines.base import EngineLoadError, EngineSupport
from ttspilot.hardware import HardwareProfile
from ttspilot.launcher.optimized import tuning_path
from ttspilot.pool_shape import ShapeMeasurement
from ttspilot.tiers import TuningProfile, plan, tuning_fingerprint

if TYPE_CHECKING:  # the launcher imports this module; pandas and tabulate stay out of its start
    from ttspilot.bench.report import Recommendation, Row


@dataclass(frozen=True)
class ProfileOutcome:
    path: Path | None  # None: not written, `message` says why
    message: str


def model_hash(model_dir: Path | None) -> str:
    """sha256 prefix of the model file a server would speak with by default (its engine's first model file);
    empty when there is none, so a bad --model_dir fails where the server loads it, not here."""
    try:
        model = engine_class(model_dir).model_files(model_dir)[0]
    except EngineLoadError:
        return ""
    return hasher_for(cache_dir_for(model_dir)).sha256(model)[:16]


def profile_fingerprint(hardware: HardwareProfile, support: EngineSupport, model_dir: Path | None) -> str:
    return tuning_fingerprint(hardware, support, model_hash(model_dir))


def save_profile(
    rows: list[Row], best: Recommendation | None, hardware: HardwareProfile, support: EngineSupport,
    model_dir: Path | None, shapes: Mapping[str, tuple[ShapeMeasurement, ...]] | None = None,
) -> ProfileOutcome:
    """Write `best` (the fastest named tier that passed quality), the measured RTFs, the tiers that failed quality
    and the pool shapes measured per tier."""
    planned = [candidate.tier for candidate in plan(hardware, support).candidates if not candidate.vllm]
    missing = [tier for tier in planned if tier not in {row.tier for row in rows}]
    if missing:
        return ProfileOutcome(
            None, f"tuning profile not written: the launcher would also try {', '.join(missing)} (use --test_all)"
        )
    if best is None:
        return ProfileOutcome(None, "tuning profile not written: no named tier ran and passed the quality check")
    fingerprint = profile_fingerprint(hardware, support, model_dir)
    named = [row for row in rows if row.status == "ran" and row.tier != "custom"]
    profile = TuningProfile(
        fingerprint=fingerprint,
        best_tier=best.tier,
        measured={row.tier: row.rtf_median for row in named if not row.failed_quality},
        created=datetime.now().astimezone().isoformat(timespec="seconds"),
        failed_quality=tuple(row.tier for row in named if row.failed_quality),
        shapes=dict(shapes or {}),
    )
    path = tuning_path(fingerprint)
    profile.save(path)
    measured = "".join(f", {len(rows)} pool shape(s) of {tier}" for tier, rows in profile.shapes.items())
    return ProfileOutcome(
        path, f"tuning profile written: {path} (best tier {best.tier}, RTF {best.rtf_median:.3f}{measured})"
    )
