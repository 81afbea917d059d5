"""Readiness and health: 503 until the canary passed, so launchers and load balancers wait for real audio,
and 503 again while an engine call is stuck past --call_timeout, so the launcher restarts the server."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ttspilot.config import LAUNCH_TOKEN_HEADER
from ttspilot.server.state import ServerState

router = APIRouter(tags=["health"])


def _launch_token_verdict(request: Request, state: ServerState) -> str | None:
    """"match" when the request presents this server's launch token, "mismatch" for any other; None unasked.

    The token is never echoed: a launcher proves the server on its port is its own child, and
    anyone else learns nothing from /health that would let them pose as one.
    """
    presented = request.headers.get(LAUNCH_TOKEN_HEADER)
    if presented is None:
        return None
    expected = state.settings.launch_token
    return "match" if expected and hmac.compare_digest(presented.encode(), expected.encode()) else "mismatch"


def _health(request: Request) -> JSONResponse:
    state: ServerState = request.app.state.ttspilot
    reason = state.unhealthy_reason()
    healthy = reason is None
    body = {
        "status": "ready" if healthy else "stuck" if state.ready else "not_ready",
        "engine": state.engine.name,
        "model": state.engine.default_voice,
        "tier": state.engine.info().tier,
    }
    if (verdict := _launch_token_verdict(request, state)) is not None:
        body["launch_token"] = verdict
    if not healthy:
        body["reason"] = reason
    if state.canary is not None:
        body["canary"] = state.canary.reason
        body["canary_fault"] = state.canary.fault  # null when it passed; the launcher's FP16 fallback reads it
    return JSONResponse(body, status_code=200 if healthy else 503)


@router.get("/health", summary="200 when ready to serve; 503 before, and while an engine call is stuck")
async def health(request: Request) -> JSONResponse:
    return _health(request)


@router.get("/v1/health", summary="Same as /health")
async def v1_health(request: Request) -> JSONResponse:
    return _health(request)
