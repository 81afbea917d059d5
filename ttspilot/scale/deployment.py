"""The Ray Serve deployment: one replica = one engine = the whole ttspilot server (`create_app`) behind Ray's proxy.

The replica's constructor runs `replica_start.start_replica` (probe the GPU Ray gave it, plan, load, canary); the
app it returns is the replica's ASGI app (`serve.ingress` with `__serve_build_asgi_app__`). Ray's health check asks
the server's own `/health` condition, so a replica whose canary never passed or whose engine call is stuck is
restarted by Ray. Every response names the replica in `X-Ttspilot-Replica`; `/performance_info` says the same under
`replica`, and `/cluster_info` lists them all (`cluster.py`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import ray
from fastapi import FastAPI
from ray import serve
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ttspilot.hardware import describe
from ttspilot.scale.cluster import board_for
from ttspilot.scale.cluster import router as cluster_router
from ttspilot.scale.replica_start import ReplicaOptions, StartedReplica, start_replica

log = logging.getLogger("ttspilot.scale")

REPLICA_HEADER = "X-Ttspilot-Replica"
REQUEST_ID_HEADER = b"x-request-id"
SERVE_NAMESPACE = "serve"  # the Ray namespace Serve names its replica actors in


class ReplicaHeaders:
    """ASGI middleware on every HTTP response (streamed ones too): name the replica that made it, and leave
    X-Request-ID to Ray's proxy, which adds the id it sent the replica; the server answers with that same id, and two
    copies would reach clients as "id, id"."""

    def __init__(self, app: ASGIApp, replica_id: str) -> None:
        self.app = app
        self.header = (REPLICA_HEADER.lower().encode(), replica_id.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent_id = dict(scope["headers"]).get(REQUEST_ID_HEADER)

        async def send_named(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(name, value) for name, value in message.get("headers", [])
                           if not (name.lower() == REQUEST_ID_HEADER and value == sent_id)]
                message = {**message, "headers": [*headers, self.header]}
            await send(message)

        await self.app(scope, receive, send_named)


def replica_logging() -> None:
    """ttspilot's INFO lines (hardware, plan, canary, the access log) on the replica's stderr, which Ray keeps in the
    replica's log file and shows in the driver's output; Ray leaves the root logger at WARNING in a replica."""
    logger = logging.getLogger("ttspilot")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s [ttspilot] %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # once is enough, whatever Ray puts on the root logger


@dataclass(frozen=True)
class ClusterContext:
    board: Any
    health_period_s: float


def replica_report(started: StartedReplica, gpu_ids: list[str]) -> dict[str, Any]:
    """Who this replica is, where it runs and what it chose, for /performance_info and the cluster view."""
    context = serve.get_replica_context()
    runtime = ray.get_runtime_context()
    info = started.app.state.ttspilot.engine.info()
    return {
        "replica_id": context.replica_id.unique_id,
        "deployment": context.deployment,
        "actor_name": runtime.get_actor_name(),
        "namespace": SERVE_NAMESPACE,
        "node_id": runtime.get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "pid": os.getpid(),
        "gpu_ids": gpu_ids,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "hardware": describe(started.profile),
        "tier": info.tier,
        "device": info.device,
        "chosen": str(started.candidate),
        "failed_before": list(started.failures),
        "healthy": True,
        "reason": None,
    }


@serve.deployment(name="ttspilot")
@serve.ingress()
class TtsReplica:
    """One self-tuning server on the resources Ray gave this replica."""

    def __init__(self, options: ReplicaOptions, health_period_s: float = 10.0) -> None:
        replica_logging()
        gpu_ids = [str(gpu_id) for gpu_id in ray.get_gpu_ids()]
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0)
        started = start_replica(options, gpu_ids, cpus)
        self.state = started.app.state.ttspilot
        self.state.replica = replica_report(started, gpu_ids)
        self.board = board_for(serve.get_replica_context().app_name)
        self.server: FastAPI = started.app
        self.server.state.ttspilot_cluster = ClusterContext(self.board, health_period_s)
        self.server.include_router(cluster_router)
        self.server.add_middleware(ReplicaHeaders, replica_id=self.state.replica["replica_id"])
        self._report()
        where = f"GPU {', '.join(gpu_ids)}" if gpu_ids else "no GPU"
        log.info("replica %s serving tier %s (%s)", self.state.replica["replica_id"], self.state.replica["tier"], where)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return self.server

    def _report(self) -> None:
        self.board.report.remote(self.state.replica["replica_id"], self.state.replica)

    def check_health(self) -> None:
        """Ray's health check: the condition /health answers from; a failure is reported before it is raised."""
        reason = self.state.unhealthy_reason()
        self.state.replica.update(healthy=reason is None, reason=reason)
        self._report()
        if reason is not None:
            raise RuntimeError(f"ttspilot replica unhealthy: {reason}")
