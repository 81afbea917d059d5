"""Readiness: 503 until the canary passed, so launchers and load balancers wait for real audio."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ttspilot.server.state import ServerState

router = APIRouter(tags=["health"])


def _health(state: ServerState) -> JSONResponse:
    body = {
        "status": "ready" if state.ready else "not_ready",
        "engine": state.engine.name,
        "model": state.engine.default_voice,
        "tier": state.engine.info().tier,
    }
    if not state.ready:
        body["reason"] = state.not_ready_reason
    if state.canary is not None:
        body["canary"] = state.canary.reason
    return JSONResponse(body, status_code=200 if state.ready else 503)


@router.get("/health", summary="200 when ready to serve, 503 before")
async def health(request: Request) -> JSONResponse:
    return _health(request.app.state.ttspilot)


@router.get("/v1/health", summary="Same as /health")
async def v1_health(request: Request) -> JSONResponse:
    return _health(request.app.state.ttspilot)
