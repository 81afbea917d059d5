"""Capture what native libraries print: C++ logs go straight to file descriptor 2, past sys.stderr."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")  # ONNX Runtime colours its log lines


@dataclass
class Captured:
    text: str = ""


@contextlib.contextmanager
def capture_native_stderr() -> Iterator[Captured]:
    """Everything written to file descriptor 2 (C++ logs included) and Python warnings inside the block."""
    captured = Captured()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            native = ANSI_ESCAPE.sub("", sink.read().decode(errors="replace"))
            captured.text = "\n".join([native.strip(), *(str(w.message) for w in caught)]).strip()
