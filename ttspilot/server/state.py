"""Everything a route needs, kept on `app.state.ttspilot` instead of module globals."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psutil

from ttspilot.canary import CANARY_TEXT, CanaryResult, judge_audio
from ttspilot.config import ServerSettings
from ttspilot.engines.base import Engine
from ttspilot.server.pipeline import SynthesisPipeline
from ttspilot.server.stats import StatsRecorder

log = logging.getLogger(__name__)


@dataclass
class ServerState:
    engine: Engine
    settings: ServerSettings
    stats: StatsRecorder
    pipeline: SynthesisPipeline
    ready: bool = False
    canary: CanaryResult | None = None
    not_ready_reason: str = "warming up"
    replica: dict[str, Any] | None = None  # which Ray Serve replica this is and what it planned (ttspilot/scale/)
    process: psutil.Process = field(default_factory=lambda: psutil.Process(os.getpid()))

    def warm_up(self) -> float:
        """Run the canary on a worker thread; the server is ready only when it passes."""
        started = time.perf_counter()
        chunks = list(self.engine.synthesize(CANARY_TEXT, self.engine.default_voice))
        audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
        self.canary = judge_audio(audio, self.engine.sample_rate)
        self.ready = self.canary.passed or not self.settings.canary
        self.not_ready_reason = "" if self.ready else f"canary failed: {self.canary.reason}"
        seconds = time.perf_counter() - started
        log.info("canary %s in %.2f s: %s", "passed" if self.ready else "FAILED", seconds, self.canary.reason)
        return seconds

    def unhealthy_reason(self) -> str | None:
        """Why no traffic should come now (not ready yet, or an engine call stuck past --call_timeout); None: healthy.

        /health and the gRPC health service both answer from it."""
        return self.not_ready_reason if not self.ready else self.pipeline.watch.stuck()

    def hardware_summary(self) -> dict[str, Any]:
        memory = psutil.virtual_memory()
        return {
            "cpu_cores": os.cpu_count(),
            "ram_total_gb": round(memory.total / 2**30, 1),
            "ram_available_gb": round(memory.available / 2**30, 1),
            "process_rss_mb": round(self.process.memory_info().rss / 2**20, 1),
        }
