"""The Serve application: `ScaleArgs` (what an operator sets) -> the deployment's Ray options and its replicas.

`app_builder` is the import path of `serve run`, of the Serve config and of KubeRay's `serveConfigV2`
(deploy/), and the launcher's `--ray` builds through it too, so every way in derives the same options:

- `ray_actor_options.num_gpus` = `gpus_per_replica`: Ray pins that GPU (or share of one) to the replica and sets
  its CUDA_VISIBLE_DEVICES; the replica plans on that GPU alone (`replica_start.assigned_profile`);
- `max_ongoing_requests` = the replica's pipeline admission (`--max_queue`, pinned in every replica's flags so the
  two agree whatever tier each replica picks): Ray sends a replica no more than it admits and routes the rest to
  other replicas or queues it at the proxy, bounded by `max_queued_requests` (answered 503 beyond);
- `num_replicas`, or `autoscaling_config` on ongoing requests per replica (`target_ongoing_requests`);
- the health check every `health_check_period_s` asks the server's /health condition (`deployment.TtsReplica`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from ray.serve import Application
from ray.serve.config import AutoscalingConfig

from ttspilot.launcher.options import TIER_FLAGS
from ttspilot.pool_shape import Objective
from ttspilot.scale.deployment import TtsReplica
from ttspilot.scale.replica_start import ReplicaOptions
from ttspilot.server.cli import build_parser

DEFAULT_ADMISSION = 8  # --max_queue when none is given: 4 requests per session of the largest pool a tier starts with
QUEUED_PER_ADMITTED = 2  # requests the proxy may hold per admitted one before it answers 503


class ScaleArgs(BaseModel):
    """The application's arguments (`args:` in a Serve config)."""

    model_config = ConfigDict(extra="forbid")

    model_dir: str | None = Field(default=None, description="model folder on every node; None: the embedded voice")
    server_flags: list[str] = Field(default_factory=list, description="fastapi_server.py setting flags per replica")
    replicas: int = Field(default=1, ge=1, description="fixed replica count (ignored with autoscaling)")
    min_replicas: int | None = Field(default=None, ge=0, description="autoscaling lower bound; set both to autoscale")
    max_replicas: int | None = Field(default=None, ge=1, description="autoscaling upper bound")
    target_ongoing_requests: float | None = Field(default=None, gt=0,
                                                  description="autoscaling target per replica; None: Ray's default")
    autoscaling: dict[str, float] = Field(default_factory=dict,
                                          description="further Ray autoscaling_config fields (delays, look-back)")
    gpus_per_replica: float = Field(default=0.0, ge=0, description="GPUs Ray reserves per replica; fractions share")
    cpus_per_replica: float = Field(default=1.0, ge=0,
                                    description="CPUs Ray reserves per replica; its thread pool is sized to them")
    objective: Objective = Field(default="balanced",
                               description="which measured pool shape a tier runs in (launcher --objective)")
    health_check_period_s: float = Field(default=10.0, gt=0)
    health_check_timeout_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _checked(self) -> ScaleArgs:
        if (self.min_replicas is None) != (self.max_replicas is None):
            raise ValueError("autoscaling needs both min_replicas and max_replicas")
        if self.min_replicas is not None and self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} > max_replicas {self.max_replicas}")
        if refused := [flag for flag in self.server_flags if flag.split("=")[0] in (*TIER_FLAGS, "--grpc_port")]:
            raise ValueError(f"server_flags {' '.join(refused)}: each replica plans its own tier, and gRPC is not "
                             "served through Ray (OPTIMIZATION.md §8)")
        if self.gpus_per_replica > 1 and not self.gpus_per_replica.is_integer():
            raise ValueError(f"gpus_per_replica {self.gpus_per_replica}: a fraction of one GPU or whole GPUs")
        return self

    def _given_max_queue(self) -> int | None:
        parser = argparse.ArgumentParser(add_help=False)
        parser.add_argument("--max_queue", type=int)
        return parser.parse_known_args(self.server_flags)[0].max_queue

    def admission(self) -> int:
        """The pipeline admission every replica runs with (its --max_queue)."""
        return self._given_max_queue() or DEFAULT_ADMISSION

    def replica_options(self) -> ReplicaOptions:
        flags = list(self.server_flags)
        if self._given_max_queue() is None:
            flags += ["--max_queue", str(DEFAULT_ADMISSION)]
        build_parser().parse_args(flags)  # a bad flag fails here, on the operator's side, not in every replica
        return ReplicaOptions(Path(self.model_dir) if self.model_dir else None, tuple(flags),
                              gpu_share=self.gpus_per_replica or 1.0, objective=self.objective)

    def deployment_options(self) -> dict[str, Any]:
        """The deployment's Ray options, derived as the module docstring says."""
        admission = self.admission()
        options: dict[str, Any] = {
            "max_ongoing_requests": admission,
            "max_queued_requests": QUEUED_PER_ADMITTED * admission,
            "ray_actor_options": {"num_cpus": self.cpus_per_replica, "num_gpus": self.gpus_per_replica},
            "health_check_period_s": self.health_check_period_s,
            "health_check_timeout_s": self.health_check_timeout_s,
            "logging_config": {"enable_access_log": False},  # the server's own access log (ttspilot.access) stays
        }
        if self.min_replicas is None:
            return {**options, "num_replicas": self.replicas}
        autoscaling = {"min_replicas": self.min_replicas, "max_replicas": self.max_replicas, **self.autoscaling}
        if self.target_ongoing_requests is not None:
            autoscaling["target_ongoing_requests"] = self.target_ongoing_requests
        AutoscalingConfig(**autoscaling)  # Ray's own validation, before anything is deployed
        return {**options, "autoscaling_config": autoscaling}


def build(args: ScaleArgs) -> Application:
    return TtsReplica.options(**args.deployment_options()).bind(args.replica_options(), args.health_check_period_s)


def app_builder(args: dict[str, Any]) -> Application:
    """`serve run ttspilot.scale.serve_app:app_builder` and the Serve config's import path."""
    return build(ScaleArgs.model_validate(args))
