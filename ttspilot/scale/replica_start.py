"""A replica's start without a child process: probe the GPU Ray gave it, plan, load and canary each tier in turn.

The launcher's policy, in-process: the same plan (`launcher.optimized.tuned_plan`: a tuning profile whose
fingerprint matches what the replica sees, measured pool shapes by `objective`) over the same probe, limited to the
devices Ray assigned and to this replica's share of a fractional GPU; the same candidates in order, the same
`after_failure` fallback line.
A tier is live only when the canary passes in the replica itself; when none is, the start raises with every
failure, and Ray retries the replica and shows that message on the deployment's status.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from ttspilot.bench.profile import model_hash
from ttspilot.config import ServerSettings
from ttspilot.engines import engine_support, load_engine
from ttspilot.engines.base import EngineLoadError, LoadOptions
from ttspilot.hardware import HardwareProfile, cuda_device_id, describe, probe
from ttspilot.launcher.child import Failure
from ttspilot.launcher.optimized import tuned_plan
from ttspilot.launcher.run import after_failure
from ttspilot.pool_shape import Objective
from ttspilot.server.app import create_app
from ttspilot.server.cli import build_parser, settings_from
from ttspilot.tiers import Candidate, TierPlan

log = logging.getLogger("ttspilot.scale")


class ReplicaStartError(RuntimeError):
    """No tier came up on this replica; the message lists every tier's failure."""


@dataclass(frozen=True)
class ReplicaOptions:
    """What every replica of a deployment starts from; each plans its own tier on its own GPU."""

    model_dir: Path | None = None
    server_flags: tuple[str, ...] = ()  # fastapi_server.py setting flags (limits, --api_key, ...); no tier flags
    gpu_share: float = 1.0  # the part of a GPU Ray gives each replica (num_gpus below 1: several share one)
    objective: Objective = "balanced"  # which measured pool shape a tier runs in (launcher --objective)
    nvml: Any = field(default=None, repr=False)  # an NVML module stand-in (the tests' fake); None: pynvml

    def settings(self) -> ServerSettings:
        """The replica's server settings: its flags over the TTSPILOT_* environment, as fastapi_server.py reads them."""
        flags = [*self.server_flags, *(["--model_dir", str(self.model_dir)] if self.model_dir else [])]
        return settings_from(build_parser().parse_args(flags))


@dataclass(frozen=True)
class StartedReplica:
    app: FastAPI
    candidate: Candidate
    tier_plan: TierPlan
    profile: HardwareProfile
    failures: tuple[str, ...]  # tiers tried before this one, each with why


def assigned_profile(profile: HardwareProfile, gpu_ids: Sequence[str | int], share: float,
                     cpus: float = 0.0) -> HardwareProfile:
    """The probe as this replica should plan with it: only the GPUs Ray assigned (NVML sees every GPU of the node;
    CUDA_VISIBLE_DEVICES, which Ray sets, does not change what NVML reports), of a GPU shared between replicas
    (`share` < 1) only this replica's part of its free memory, and as many cores as the CPUs Ray reserved for it
    (`cpus`; 0: reserved none, the node's count), so replicas on one node do not each size their pools for all of
    it (Ray sets OMP_NUM_THREADS the same way)."""
    cores = max(1, int(cpus)) if cpus > 0 else profile.cpu_cores
    profile = replace(profile, cpu_cores=min(cores, profile.cpu_cores))
    wanted = {str(gpu_id) for gpu_id in gpu_ids}
    gpus = tuple(replace(gpu, memory_free=int(gpu.memory_free * min(share, 1.0)))
                 for gpu in profile.gpus if str(gpu.index) in wanted)
    if gpus:
        return replace(profile, gpus=gpus, gpu_absent_reason=None)
    reason = ("Ray assigned this replica no GPU (--gpus_per_replica 0)" if not wanted else
              f"Ray assigned GPU {', '.join(sorted(wanted))}, which NVML does not list here")
    return replace(profile, gpus=(), gpu_absent_reason=reason)


def start_replica(options: ReplicaOptions, gpu_ids: Sequence[str | int], cpus: float = 0.0) -> StartedReplica:
    """Probe -> plan -> load -> canary on the GPUs and CPUs Ray assigned, falling back tier by tier; raises
    ReplicaStartError when no tier works."""
    settings = options.settings()
    profile = assigned_profile(probe(options.nvml), gpu_ids, options.gpu_share, cpus)
    tier_plan, shape_lines = tuned_plan(profile, engine_support(settings.model_dir), model_hash(settings.model_dir),
                                        options.objective)
    for line in [*(f"hardware: {line}" for line in describe(profile)), *([f"tuning: {tier_plan.tuning_note}"]
                 if tier_plan.tuning_note else []), *shape_lines,
                 *(f"plan: try {candidate}" for candidate in tier_plan.candidates)]:
        log.info("%s", line)
    remaining, failures = list(tier_plan.candidates), []
    while remaining:
        candidate = remaining.pop(0)
        outcome = _try(candidate, tier_plan, settings, profile.cpu_cores)
        if not isinstance(outcome, Failure):
            log.info("tier %s: canary passed, serving", candidate.label)
            return StartedReplica(outcome, candidate, tier_plan, profile, tuple(failures))
        failures.append(f"{candidate.label}: {outcome.reason}")
        remaining, line = after_failure(candidate, outcome, remaining)
        log.warning("%s", line)
    raise ReplicaStartError("no tier came up on this replica; failures: " + " | ".join(failures))


def _try(candidate: Candidate, tier_plan: TierPlan, settings: ServerSettings, cores: int) -> FastAPI | Failure:
    """The server app on `candidate` once its canary passed in-process; else why it failed. Its sessions' threads
    come from the replica's `cores`, not the node's (a measured pool shape keeps its own)."""
    config = candidate.config
    if config.cpu_threads is None:
        config = replace(config, cpu_threads=config.threads_per_session(cores))
    if config.device == "cuda" and tier_plan.gpu is not None:
        config = replace(config, device_id=cuda_device_id(tier_plan.gpu.index))
    try:
        engine = load_engine(settings.model_dir, config, LoadOptions(settings.cosyvoice_root, settings.voices,
                                                                       settings.vllm_gpu_memory_utilization))
    except EngineLoadError as error:
        return Failure(f"engine failed to load: {error.reason}")
    app = create_app(engine, settings)
    state = app.state.ttspilot
    try:
        state.pipeline.executor.submit(state.warm_up).result()
    except Exception as error:  # a broken engine is this tier's failure, not the replica's crash
        state.not_ready_reason = f"canary raised {type(error).__name__}: {error}"
    if state.ready:
        return app
    state.pipeline.shutdown()
    return Failure(state.not_ready_reason, state.canary.fault if state.canary else None)
