"""What a tier makes upstream open is made fit before upstream builds the model (docs/architecture.md, "Caches").

Upstream opens its JIT zips and its TensorRT plan by fixed names and trusts them: a missing zip
raises deep inside its constructor, a plan from another GPU crashes the process. The engine runs
this first, so a tier whose files are not fit fails with one line naming the file and the fix, and
the launcher moves on to the next tier.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ttspilot.config import OptimizationConfig
from ttspilot.engines.cosyvoice.jit_files import check_jit_files
from ttspilot.engines.cosyvoice.plans import prepare_plan_for_load

log = logging.getLogger(__name__)


def select_device(config: OptimizationConfig) -> None:
    """Upstream runs on `torch.device('cuda')`, the current device: make that the tier's --device_id."""
    import torch

    if config.device == "cuda" and torch.cuda.is_available() and config.device_id != torch.cuda.current_device():
        torch.cuda.set_device(config.device_id)
        log.info("CUDA device %d selected (--device_id)", config.device_id)


def prepare_tier(model_dir: Path, version: int, config: OptimizationConfig) -> None:
    """JIT zips checked (any machine) and the TensorRT plan ensured for this GPU; EngineLoadError when unfit."""
    select_device(config)
    check_jit_files(model_dir, version, config)
    prepare_plan_for_load(model_dir, config, device_id=config.device_id)
