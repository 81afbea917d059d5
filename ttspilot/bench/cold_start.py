"""Cold vs warm CPU session load for the embedded voice's ONNX model, side by side in one run (not a test).

    python -m ttspilot.bench.cold_start [--repeats 5]

Variants, interleaved so background noise hits all of them alike:
  ort-defaults   InferenceSession with ONNX Runtime's default options (what open_session did before)
  cold           open_session without the cache (online ORT_ENABLE_ALL, CPU memory-reuse planning off)
  first-start    open_session on an empty cache directory: builds and caches the optimized graph
  warm           open_session with a valid cache: loads the optimized graph (ORT_DISABLE_ALL)
Each open_session time is its whole wall time (source hash memo read, manifest check, load).
A fresh FileHasher per call reads the on-disk hash memo as a new process would.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import onnxruntime as ort
from tabulate import tabulate

from ttspilot.accel.fingerprint import MEMO_FILENAME, FileHasher
from ttspilot.accel.onnx_session import cpu_threads, open_session
from ttspilot.config import TIERS
from ttspilot.engines import engine_class


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model = engine_class(None).model_files(None)[0]
    config = TIERS["cpu"]
    times: dict[str, list[float]] = {"ort-defaults": [], "cold": [], "first-start": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        warm_dir = Path(tmp) / "warm"
        open_session(model, config, warm_dir)  # build once for the warm variant
        time.sleep(3.5)  # let the artifact leave the hash memo's racy window, as on any later start
        open_session(model, config, warm_dir, hasher=FileHasher(warm_dir / MEMO_FILENAME))
        for rep in range(args.repeats):
            options = ort.SessionOptions()
            options.intra_op_num_threads = cpu_threads(config)
            started = time.perf_counter()
            ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
            times["ort-defaults"].append(time.perf_counter() - started)

            times["cold"].append(open_session(model, config, Path(tmp) / "unused", use_cache=False).load_seconds)

            fresh = Path(tmp) / f"fresh{rep}"
            opened = open_session(model, config, fresh, hasher=FileHasher(fresh / MEMO_FILENAME))
            assert opened.cache is not None and opened.cache.status == "built", opened.cache
            times["first-start"].append(opened.load_seconds)

            opened = open_session(model, config, warm_dir, hasher=FileHasher(warm_dir / MEMO_FILENAME))
            assert opened.cache is not None and opened.cache.status == "hit", opened.cache
            times["warm"].append(opened.load_seconds)
    rows = [
        [name, f"{statistics.median(values):.3f}", " ".join(f"{v:.3f}" for v in values)]
        for name, values in times.items()
    ]
    print(
        f"onnxruntime {ort.__version__}, {cpu_threads(config)} intra-op threads, model {model.name} "
        f"({model.stat().st_size / 2**20:.0f} MiB), {args.repeats} repeats"
    )
    print(tabulate(rows, headers=["variant", "median s", "all runs s"]))
    warm = statistics.median(times["warm"])
    for name in ("ort-defaults", "cold", "first-start"):
        print(f"{name} / warm: {statistics.median(times[name]) / warm:.1f}x")


if __name__ == "__main__":
    main()
