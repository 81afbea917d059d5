"""Time from `start_optimized_server.py` to the first served audio, on a warm cache (median of N starts).

    python -m ttspilot.bench.launch_time [--starts 5]

One precompile run first makes the cache warm; each start then runs the real launcher
(probe, plan, precompile check, child server, canary) until a client gets a WAV back.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import time

import httpx

from ttspilot.launcher.child import REPO_ROOT, free_loopback_port

CLIENT_TEXT = "Ready when you are."


def one_start(timeout: float = 120.0) -> float:
    """Seconds from launching to a 200 with audio for a client polling the port."""
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}/inference_sft"
    started = time.perf_counter()
    launcher = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "start_optimized_server.py"), "--port", str(port)],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - started < timeout:
            try:
                response = httpx.get(url, params={"tts_text": CLIENT_TEXT}, timeout=30)
                if response.status_code == 200 and len(response.content) > 44:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"no audio within {timeout} s")
    finally:
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args(argv)
    subprocess.run([sys.executable, str(REPO_ROOT / "precompile_trt.py"), "--tier", "cpu"], cwd=REPO_ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    times = [one_start() for _ in range(args.starts)]
    print(f"launch to first served audio (warm cache), {args.starts} starts: "
          f"median {statistics.median(times):.2f} s; all: {' '.join(f'{t:.2f}' for t in times)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
