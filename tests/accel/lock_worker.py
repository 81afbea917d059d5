"""Run by test_cache.py as a separate process: build one cache entry with a slow fake builder.

    python lock_worker.py ROOT GO_FILE LOG_FILE MODE

Waits until GO_FILE exists (so several workers start building at the same moment), then
calls ensure_entry. The builder appends this pid to LOG_FILE (one line per real build),
sleeps, and writes the artifact. MODE "crash" kills the process in the middle of the build,
leaving its staging directory behind. Prints the outcome status.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from ttspilot.accel.cache import CacheKey, ensure_entry
from ttspilot.accel.fingerprint import FileHasher

KEY = CacheKey("test-kind", "voice", {"format": 1, "source_sha256": "ab" * 32}, ("src" + "ab" * 4,))


def main() -> None:
    root, go, log_file, mode = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    print("ready", flush=True)
    deadline = time.time() + 30
    while not go.exists():
        if time.time() > deadline:
            sys.exit("no go signal")
        time.sleep(0.01)

    def build(staging: Path) -> str:
        with open(log_file, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        (staging / "artifact.bin").write_bytes(b"half")
        if mode == "crash":
            os._exit(9)
        time.sleep(1.0)
        (staging / "artifact.bin").write_bytes(b"compiled" * 1000)
        return "built here"

    outcome = ensure_entry(root, KEY, build, FileHasher(None), lock_timeout=60)
    print(outcome.status, flush=True)


if __name__ == "__main__":
    main()
