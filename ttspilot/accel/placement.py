"""Cache files copied to where other code opens them by a fixed name, and what is found there.

Upstream CosyVoice opens `flow.decoder.estimator.fp16.mygpu.plan` (and its JIT zips) in the model
folder, whatever GPU, TensorRT or model built them: a plan copied from another GPU is loaded and
crashes. So a file is put there only from a valid cache entry, and a record beside the cache
(`<cache_dir>/placed/<file name>.json`) keeps the key of that entry and the copy's size and sha256.
What is at the fixed path is then one of:

- missing: nothing there;
- ours: placed from an entry with exactly this key, unchanged since;
- stale: placed by us for another key (another GPU, library, precision or source);
- corrupt: placed by us, changed since (size or sha256);
- foreign: no record: shipped with the model, copied by hand, or built by upstream itself.

Which states a caller trusts is its policy (a plan: only `ours`; a shipped JIT file may be kept).
Anything replaced is moved aside (renamed in place, never deleted), so an operator's file is never lost.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from ttspilot.accel.cache import CacheKey, atomic_write_json, describe_key_difference, explained_os_errors
from ttspilot.accel.fingerprint import FileHasher

log = logging.getLogger("ttspilot.accel")

RECORDS = "placed"
State = Literal["missing", "ours", "stale", "corrupt", "foreign"]


@dataclass(frozen=True)
class Placed:
    status: State
    reason: str  # one line for an operator


def record_path(cache_dir: Path, target: Path) -> Path:
    return Path(cache_dir) / RECORDS / f"{Path(target).name}.json"


def _read_record(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def placed_state(target: Path, key: CacheKey, cache_dir: Path, hasher: FileHasher) -> Placed:
    """What is at `target`, judged against the cache entry `key` names (see the module docstring)."""
    target = Path(target)
    if not target.is_file():
        return Placed("missing", f"{target.name} is not in {target.parent}")
    record = _read_record(record_path(cache_dir, target))
    if record is None:
        return Placed("foreign", f"{target.name} was not placed by ttspilot (shipped, copied or built elsewhere): "
                                 "which GPU and library it was built for is unknown")
    if record.get("key") != key.canonical_fields:
        difference = describe_key_difference(record.get("key") or {}, key.canonical_fields)
        return Placed("stale", f"{target.name} was built for another setup: {difference}")
    size = target.stat().st_size
    if size != record.get("size") or hasher.sha256(target) != record.get("sha256"):
        return Placed("corrupt", f"{target.name} changed since ttspilot placed it ({size} bytes, "
                                 f"placed {record.get('size')}; sha256 differs)")
    return Placed("ours", f"{target.name}: placed from cache entry {record.get('entry')}")


def move_aside(target: Path, cache_dir: Path, why: str) -> Path:
    """Rename `target` to `<name>.moved-aside-<UTC time>` beside it and forget its record; returns the new path."""
    target = Path(target)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    aside = target.with_name(f"{target.name}.moved-aside-{stamp}")
    with explained_os_errors(target.parent):
        os.replace(target, aside)
    record_path(cache_dir, target).unlink(missing_ok=True)
    log.warning("%s moved aside to %s: %s", target.name, aside.name, why)
    return aside


def place(source: Path, target: Path, key: CacheKey, cache_dir: Path, hasher: FileHasher, entry: Path) -> None:
    """Copy `source` (a file of the valid cache entry `entry`) to `target` atomically and record it.

    A copy, not a link: code that rewrites the fixed path in place must not alter the cache entry.
    """
    source, target = Path(source), Path(target)
    with explained_os_errors(target.parent):
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as tmp:
            temporary = Path(tmp.name)
        try:
            shutil.copyfile(source, temporary)
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    record = {"key": key.canonical_fields, "entry": str(entry), "size": target.stat().st_size,
              "sha256": hasher.sha256(target), "placed_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    record_file = record_path(cache_dir, target)
    with explained_os_errors(record_file.parent):
        record_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(record_file, record)
