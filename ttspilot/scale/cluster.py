"""The cluster view: every replica's tier, device and health, from the reports the replicas leave on one small actor.

Ray Serve routes to replicas but answers no question about what each one chose. Each replica reports to a
detached `ClusterBoard` actor (no CPU) when it starts and at each of Ray's health checks; `GET /cluster_info`, on
whichever replica answers, reads the board and drops replicas whose actor is gone (killed, replaced, scaled down).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ray
from fastapi import APIRouter, Request

BOARD_NAMESPACE = "ttspilot"
STALE_CHECKS = 3  # health checks a replica may miss before its report no longer counts as healthy

router = APIRouter(tags=["health"])


@ray.remote(num_cpus=0)
class ClusterBoard:
    """Replica id -> its last report, with when it came."""

    def __init__(self) -> None:
        self._reports: dict[str, dict[str, Any]] = {}

    def report(self, replica_id: str, entry: dict[str, Any]) -> None:
        self._reports[replica_id] = {**entry, "reported_at": time.time()}

    def forget(self, replica_ids: list[str]) -> None:
        for replica_id in replica_ids:
            self._reports.pop(replica_id, None)

    def reports(self) -> dict[str, dict[str, Any]]:
        return dict(self._reports)


def board_for(app_name: str) -> Any:
    """The application's board, created by the first replica that asks; it outlives replicas, not the cluster."""
    return ClusterBoard.options(name=f"board-{app_name}", namespace=BOARD_NAMESPACE, lifetime="detached",
                                get_if_exists=True).remote()  # detached: a replica's death must not take it along


def drop_board(app_name: str) -> None:
    """End the application's board when the application leaves a cluster that stays up."""
    try:
        ray.kill(ray.get_actor(f"board-{app_name}", namespace=BOARD_NAMESPACE))
    except ValueError:  # no replica ever started
        pass


def actor_alive(name: str, namespace: str) -> bool:
    """Whether Ray still knows the named actor: a killed or replaced replica's name is released."""
    try:
        ray.get_actor(name, namespace=namespace)
    except ValueError:
        return False
    return True


async def cluster_view(board: Any, health_period_s: float) -> dict[str, Any]:
    """Live replicas (by replica id), each with its tier, device, plan and health; gone ones are forgotten."""
    reports: dict[str, dict[str, Any]] = await board.reports.remote()
    living = await asyncio.gather(*(asyncio.to_thread(actor_alive, r["actor_name"], r["namespace"])
                                    for r in reports.values()))
    gone = [replica_id for replica_id, alive in zip(reports, living) if not alive]
    if gone:
        board.forget.remote(gone)
    now = time.time()
    replicas = []
    for replica_id, alive in zip(reports, living):
        if alive:
            entry = dict(reports[replica_id])
            entry["report_age_s"] = round(now - entry.pop("reported_at"), 1)
            entry["healthy"] = entry["healthy"] and entry["report_age_s"] <= STALE_CHECKS * health_period_s
            replicas.append(entry)
    replicas.sort(key=lambda entry: entry["replica_id"])
    return {"replicas": replicas, "count": len(replicas), "healthy": sum(entry["healthy"] for entry in replicas)}


@router.get("/cluster_info", summary="Every replica of this Ray Serve application: tier, device, health")
async def cluster_info(request: Request) -> dict[str, Any]:
    cluster = request.app.state.ttspilot_cluster
    return {"answered_by": request.app.state.ttspilot.replica["replica_id"],
            **await cluster_view(cluster.board, cluster.health_period_s)}
