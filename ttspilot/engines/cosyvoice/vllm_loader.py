"""vLLM for the CosyVoice2/3 LLM with the operator's share of GPU memory (docs/architecture.md, "Engines").

Upstream's `CosyVoice2Model.load_vllm(model_dir)` (cosyvoice/cli/model.py, both trees) fixes
`gpu_memory_utilization=0.2`. So the engine builds upstream's model with `load_vllm=False` and
`load_vllm` here does the same steps with `--vllm_gpu_memory_utilization`. `vllm_gate` runs before
the model is built: without an importable vllm or a CUDA device the load stops with one line
saying why and what to install, instead of upstream's silent switch-off (2026 trees) or a crash
deep inside vLLM.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

from ttspilot.engines.base import EngineLoadError
from ttspilot.engines.cosyvoice.acceleration import VLLM_FOLDER
from ttspilot.engines.cosyvoice.vllm_pairs import install_hint

log = logging.getLogger(__name__)


def vllm_gate() -> None:
    """Raise EngineLoadError unless vllm imports and torch sees a CUDA device (vLLM runs on CUDA only)."""
    import torch

    problems = []
    try:
        importlib.import_module("vllm")
    except Exception as error:  # an ImportError, or whatever a vllm built against another torch raises
        problems.append(f"vllm is not importable ({type(error).__name__}: {error}); {install_hint()}")
    if not torch.cuda.is_available():
        problems.append("torch sees no CUDA device and vLLM runs on CUDA only")
    if problems:
        raise EngineLoadError("--load_vllm: " + "; ".join(problems))


def load_vllm(model: Any, model_dir: Path, memory_share: float) -> None:
    """Put upstream's LLM on a vLLM engine with our memory share; EngineLoadError with vLLM's reason if it fails.

    `model` is upstream's CosyVoice2Model/CosyVoice3Model (the `model` attribute of its CosyVoice object).
    """
    try:
        _load_vllm(model, model_dir, memory_share)
    except Exception as error:  # vLLM raises ValueError/RuntimeError for memory, versions, architectures
        raise EngineLoadError(f"--load_vllm: vLLM could not load the LLM: {type(error).__name__}: {error}") from None


def _load_vllm(model: Any, model_dir: Path, memory_share: float) -> None:
    """The steps of upstream's `CosyVoice2Model.load_vllm(model_dir)`, with `memory_share` for its fixed 0.2."""
    from cosyvoice.utils.file_utils import export_cosyvoice2_vllm
    from cosyvoice.vllm.cosyvoice2 import CosyVoice2ForCausalLM
    from vllm import EngineArgs, LLMEngine, ModelRegistry, __version__

    # Upstream's vllm_example.py registers its CosyVoice2 LLM class before building the model; the export below
    # names it in config.json for CosyVoice2 (whose LLM decoder has a bias; CosyVoice3's stays Qwen2ForCausalLM).
    ModelRegistry.register_model("CosyVoice2ForCausalLM", CosyVoice2ForCausalLM)
    # vllm >= 0.11 runs its engine core in another process, spawned once CUDA is initialised (it is: the model
    # is on the GPU), and a spawned process does not see the registration above; upstream's example gets it
    # there only because spawn re-runs the main script, its own. So the core stays in this process, as 0.9.0's.
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    folder = model_dir / VLLM_FOLDER
    export_cosyvoice2_vllm(model.llm, str(folder), model.device)  # writes the folder unless it exists
    log.info("vLLM %s: LLM from %s with gpu_memory_utilization=%g (upstream's load fixes 0.2)", __version__, folder,
             memory_share)
    engine_args = EngineArgs(model=str(folder), skip_tokenizer_init=True, enable_prompt_embeds=True,
                             gpu_memory_utilization=memory_share)
    model.llm.vllm = LLMEngine.from_engine_args(engine_args)
    model.llm.lock = threading.Lock()
    del model.llm.llm.model.model.layers  # vLLM runs the transformer layers now, as upstream frees them
