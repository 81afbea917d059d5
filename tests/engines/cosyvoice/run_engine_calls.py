"""Drive our CosyVoice engine in-process on a tiny folder and print what the tests check, as JSON.

Runs with the CosyVoice environment's python (the test venv has no torch):
    python tests/engines/cosyvoice/run_engine_calls.py TREE MODEL_DIR
Covers what HTTP cannot see: the streaming hop length upstream shares across calls, the state an
abandoned stream leaves in upstream's model object, and which acceleration flags really took effect.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from ttspilot.config import config_from_flags
from ttspilot.engines import load_engine
from ttspilot.engines.base import LoadOptions

TEXT = "Hello world, this is a somewhat longer sentence so that a stream makes several chunks of audio."


def first_chunk_seconds(engine) -> float:
    chunks = engine.synthesize(TEXT, engine.default_voice, stream=True)
    first = next(chunks)
    list(chunks)
    return len(first) / engine.sample_rate


def main(tree: Path, model_dir: Path) -> None:
    engine = load_engine(model_dir, config_from_flags("fp16", device="cuda"), LoadOptions(cosyvoice_root=tree))
    model = engine.model.model
    firsts = [first_chunk_seconds(engine) for _ in range(3)]
    abandoned = engine.synthesize(TEXT, engine.default_voice, stream=True)
    next(abandoned)
    abandoned.close()  # the client went away after the first chunk
    leftover = {name: len(table) for name, table in vars(model).items()
                if name.endswith("_dict") and isinstance(table, dict)}
    llm_threads = [t.name for t in threading.enumerate() if t.name.endswith("(llm_job)")]
    after = first_chunk_seconds(engine)
    import torch

    info = engine.info()
    print(json.dumps({
        "first_chunk_s": firsts, "after_abandoned_s": after,
        "leftover_state": leftover, "llm_threads": llm_threads, "cuda": torch.cuda.is_available(),
        "flags": {flag: [state.active, state.reason] for flag, state in info.flags.items()},
    }))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
