"""Peak server memory for one large request, on a fresh server per size (Linux: /proc VmHWM).

    python -m ttspilot.bench.peak_memory --chars 500 2000 9999 [--digits] [--split] [-- server flags...]

Each size gets its own server on loopback, so the peak is that request's alone. The text is
prose, or digit groups (`--digits`, several phonemes per character: the worst case per
character); smart split is off unless `--split`, the shape that once sent everything to the
model in one call. A watcher kills a server past `--kill_above_mb` so a regression cannot take
the machine's memory with it.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
from tabulate import tabulate

from ttspilot.launcher.child import ServerChild

PROSE = "the quick brown fox jumps over the lazy dog and "
DIGITS = "4729 8813 5560 1298 "
MB = 2**20


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _kill_above(process: psutil.Process, limit_bytes: int, stop: threading.Event, killed: list[bool]) -> None:
    while not stop.wait(0.02):
        try:
            if process.memory_info().rss > limit_bytes:
                process.kill()
                killed.append(True)
                return
        except psutil.NoSuchProcess:
            return


def measure(chars: int, text: str, split: bool, kill_above_mb: int, server_args: list[str]) -> dict[str, object]:
    """One fresh server, one request of `chars` characters: status, seconds, base/peak/after RSS in MB.

    Peak and after are None when the server did not answer (killed by the watcher, say).
    """
    child = ServerChild.on_free_port(["--log_level", "warning", "--request_timeout", "1800", *server_args])
    child.start()
    try:
        if (reason := child.wait_ready(120)) is not None:
            raise RuntimeError(f"server did not start: {reason}")
        pid = child.process.pid
        base = _status_kib(pid, "VmRSS") / 1024
        stop, killed = threading.Event(), []
        watcher = threading.Thread(target=_kill_above, args=(psutil.Process(pid), kill_above_mb * MB, stop, killed))
        watcher.start()
        started = time.perf_counter()
        params = {"tts_text": (text * (chars // len(text) + 1))[:chars], "enable_smart_split": str(split).lower()}
        try:
            status: object = httpx.get(child.url + "/inference_sft", params=params, timeout=1800).status_code
            peak, after = round(_status_kib(pid, "VmHWM") / 1024), round(_status_kib(pid, "VmRSS") / 1024)
        except httpx.TransportError as error:
            status = f"killed above {kill_above_mb} MB" if killed else f"{type(error).__name__}"
            peak = after = None
        finally:
            stop.set()
            watcher.join()
        seconds = time.perf_counter() - started
    finally:
        child.stop()
    return {"chars": chars, "status": status, "seconds": round(seconds, 1), "base_mb": round(base),
            "peak_mb": peak, "after_mb": after}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chars", type=int, nargs="+", default=[500, 2000, 9999])
    parser.add_argument("--digits", action="store_true", help="digit groups instead of prose")
    parser.add_argument("--split", action="store_true", help="keep smart split on")
    parser.add_argument("--kill_above_mb", type=int, default=4096)
    args, server_args = parser.parse_known_args(argv)
    server_args = [arg for arg in server_args if arg != "--"]
    text = DIGITS if args.digits else PROSE
    rows = [measure(chars, text, args.split, args.kill_above_mb, server_args) for chars in args.chars]
    print(tabulate(rows, headers="keys"))
    return 0 if all(row["status"] == 200 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
