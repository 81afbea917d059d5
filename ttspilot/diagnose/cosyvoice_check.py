"""A CosyVoice install checked end to end in seconds: a tiny CosyVoice2 written, loaded through our engine, spoken.

The work runs in a child process of the same python (`python -m ttspilot.diagnose.cosyvoice_check
[ROOT]`, one JSON object on stdout): importing torch and the official code costs seconds and
would stay loaded in the diagnose process. The tiny model (`engines/cosyvoice/tiny.py`) has
random weights, so its audio is noise: the check proves the code, its dependencies and our
engine run together, not that a real model sounds right.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ttspilot.diagnose.result import Finding, failed, passed, skipped

MODULE = "ttspilot.diagnose.cosyvoice_check"
PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # puts `ttspilot` on the child's path
CHILD_TIMEOUT_S = 300.0  # a cold torch and upstream import on a slow disk takes tens of seconds
TEXT = "This sentence checks the CosyVoice install."
INSTALL = "pip install -r requirements-cosyvoice.txt (the command in OPTIMIZATION.md)"
CLONE = ("git clone --recursive https://github.com/FunAudioLLM/CosyVoice and pass --cosyvoice_root PATH "
         "(or TTSPILOT_COSYVOICE_ROOT)")


def check_cosyvoice(root: Path | None, engine: str) -> Finding:
    """PASS with the call's seconds and audio duration, FAIL with the one-line reason; SKIP with nothing to check."""
    if root is None and engine != "cosyvoice":
        return skipped("no CosyVoice install to check",
                       "pass --cosyvoice_root PATH (or TTSPILOT_COSYVOICE_ROOT) to run a tiny CosyVoice2 through it")
    where = str(root) if root is not None else "the importable `cosyvoice` package"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_PARENT),
                                                                      os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", MODULE, *([str(root)] if root is not None else [])]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return failed(f"tiny CosyVoice2 with {where}: no answer within {CHILD_TIMEOUT_S:.0f} s",
                      f"run `python -m {MODULE} ROOT` to watch it")
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        return failed(f"tiny CosyVoice2 with {where}: the check's process crashed: {tail[0]}",
                      f"run `python -m {MODULE} ROOT` to see the whole error")
    if "error" in result:
        return failed(f"tiny CosyVoice2 with {where}: {result['error']}", result["fix"], error=result["error"])
    detail = (f"tiny CosyVoice2 spoke through {result['model_class']} from {where}: {result['audio_s']:.2f} s of "
              f"audio in {result['call_s']:.2f} s (written in {result['make_s']:.1f} s, loaded in "
              f"{result['load_s']:.1f} s, on {result['device']})")
    return passed(detail, **result)


def _error(error: str, fix: str) -> dict:
    return {"error": error, "fix": fix}


def run_tiny(root: Path | None) -> dict:
    """Write, load and speak a tiny CosyVoice2; what happened as a JSON-ready dict."""
    try:
        import torch  # noqa: F401  (the first thing missing in a light install)
    except ImportError as error:
        return _error(f"torch is not importable ({error})", INSTALL)
    import numpy as np

    from ttspilot.config import TIERS
    from ttspilot.engines.base import EngineLoadError, LoadOptions
    from ttspilot.engines.cosyvoice.engine import CosyVoiceEngine
    from ttspilot.engines.cosyvoice.tiny import make_tiny
    from ttspilot.engines.cosyvoice.upstream import upstream_on_path

    try:
        if root is not None:
            upstream_on_path(root)
        with tempfile.TemporaryDirectory(prefix="ttspilot-cosyvoice-check-") as folder:
            started = time.perf_counter()
            model_dir = make_tiny(2, Path(folder) / "CosyVoice2-tiny")
            make_s = time.perf_counter() - started
            started = time.perf_counter()
            engine = CosyVoiceEngine.load(model_dir, TIERS["cpu"], LoadOptions(cosyvoice_root=root))
            load_s = time.perf_counter() - started
            started = time.perf_counter()
            chunks = list(engine.synthesize(TEXT, engine.default_voice))
            call_s = time.perf_counter() - started
    except FileNotFoundError as error:
        return _error(str(error), CLONE)
    except ModuleNotFoundError as error:
        missing = error.name or str(error)
        if missing.split(".")[0] in ("cosyvoice", "matcha"):
            return _error(f"the CosyVoice code is not importable ({error})", CLONE)
        return _error(f"the CosyVoice code needs {missing!r}", INSTALL)
    except EngineLoadError as error:
        return _error(error.reason, INSTALL)
    except Exception as error:  # whatever upstream raises is the finding
        return _error(f"{type(error).__name__}: {error}", f"run `python -m {MODULE} ROOT` "
                      "to see the whole error")
    audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    if audio.size == 0 or not np.isfinite(audio).all():
        return _error(f"the tiny model's audio is {'empty' if audio.size == 0 else 'not finite'}",
                      "compare torch and the tree with requirements-cosyvoice.txt")
    info = engine.info()
    return {"model_class": info.providers[1], "device": info.device, "sample_rate": engine.sample_rate,
            "audio_s": round(audio.size / engine.sample_rate, 3), "call_s": round(call_s, 3),
            "load_s": round(load_s, 3), "make_s": round(make_s, 3)}


def main(argv: list[str]) -> int:
    print(json.dumps(run_tiny(Path(argv[0]) if argv else None)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
