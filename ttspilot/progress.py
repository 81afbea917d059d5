"""Progress bars for operators: drawn on a terminal, silent when stderr goes to a pipe or a log file.

Every tqdm bar in ttspilot comes from `progress_bar`, so that one rule (tqdm's `disable=None`:
off unless the output is a terminal) holds everywhere; a piped benchmark or precompile log
gets the one-line messages, never hundreds of carriage-return redraws.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from tqdm import tqdm


def progress_bar(*, file: TextIO | None = None, **options: Any) -> tqdm:
    """A tqdm bar on `file` (stderr by default), disabled when that is not a terminal."""
    return tqdm(file=file if file is not None else sys.stderr, disable=None, **options)


@contextmanager
def elapsed_bar(desc: str) -> Iterator[None]:
    """A ticking elapsed-time line while a blocking build runs (only on a terminal)."""
    bar = progress_bar(total=None, desc=desc, bar_format="{desc}: {elapsed}", leave=False)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.5):
            bar.refresh()

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()
        bar.close()


class TqdmBuildProgress:
    """TensorRT builder phases as nested tqdm bars (a `ttspilot.accel.trt.BuildProgress`)."""

    def __init__(self, prefix: str = "TensorRT", file: TextIO | None = None):
        self.prefix = prefix
        self.file = file
        self._bars: dict[str, tqdm] = {}

    def phase_start(self, name: str, parent: str | None, steps: int) -> None:
        self._bars[name] = progress_bar(
            total=steps, desc=f"{self.prefix}: {name}", position=len(self._bars), leave=False, file=self.file
        )

    def step(self, name: str, step: int) -> bool:
        bar = self._bars.get(name)
        if bar is not None:
            bar.update(max(0, step + 1 - bar.n))
        return True

    def phase_finish(self, name: str) -> None:
        bar = self._bars.pop(name, None)
        if bar is not None:
            bar.close()
