"""diagnose_gpu.py in a child process with NVML faked absent (FakeNvml), so its report is the same on any machine.

    python -m tests.diagnose.without_gpu --json --port 9301    (run from the repository root)
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from tests.fakes_nvml import FakeNvml, NVMLError_LibraryNotFound

SCRIPT = Path(__file__).resolve().parents[2] / "diagnose_gpu.py"

if __name__ == "__main__":
    sys.modules["pynvml"] = FakeNvml(init_error=NVMLError_LibraryNotFound("NVML Shared Library Not Found"))
    sys.argv[0] = str(SCRIPT)
    runpy.run_path(str(SCRIPT), run_name="__main__")
