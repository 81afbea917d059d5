"""The app factory: no import-time side effects, all state on `app.state.ttspilot`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from ttspilot import __version__
from ttspilot.config import ServerSettings
from ttspilot.engines.base import Engine
from ttspilot.server.access_log import AccessLog
from ttspilot.server.errors import install_error_handlers
from ttspilot.server.grpc.server import GrpcServer
from ttspilot.server.guards import install_guards
from ttspilot.server.metrics import ServerMetrics
from ttspilot.server.pipeline import SynthesisPipeline
from ttspilot.server.prompt_upload import RequestFiles
from ttspilot.server.routes import benchmark, deploy, health, openai, optimized, upstream, v1, voices
from ttspilot.server.routes.web import install_web
from ttspilot.server.state import ServerState
from ttspilot.server.stats import StatsRecorder

log = logging.getLogger(__name__)


async def _warm_up(state: ServerState) -> None:
    if state.ready:  # a Ray replica runs the canary before its app starts serving (ttspilot/scale/)
        return
    try:
        await asyncio.get_running_loop().run_in_executor(state.pipeline.executor, state.warm_up)
    except Exception as error:  # a broken engine must show on /health, not kill the server
        state.not_ready_reason = f"canary raised {type(error).__name__}: {error}"
        log.error("canary failed: %s", state.not_ready_reason)


def create_app(engine: Engine, settings: ServerSettings | None = None) -> FastAPI:
    """Build the server around a loaded engine; /health turns 200 once the canary passes.

    With `settings.grpc_port` the lifespan also serves gRPC on the same event loop (`server/grpc/`)."""
    settings = settings or ServerSettings()
    stats = StatsRecorder(settings.stats_window)
    state = ServerState(engine, settings, stats, SynthesisPipeline(engine, settings, stats))
    metrics = ServerMetrics(lambda: state.pipeline.queued_segments, engine.info().tier, engine.name)
    stats.listeners.append(metrics.observe)

    grpc_server = GrpcServer(state, metrics) if settings.grpc_port is not None else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if grpc_server is not None:
            await grpc_server.start()
        warm_up = asyncio.create_task(_warm_up(state))
        try:
            yield
        finally:
            warm_up.cancel()
            if grpc_server is not None:
                await grpc_server.stop(settings.shutdown_grace)
            state.pipeline.shutdown()

    # /docs and /redoc from assets packaged with fastapi-offline, not a CDN: operators run air-gapped boxes.
    app = FastAPIOffline(title="ttspilot", version=__version__, lifespan=lifespan)
    app.state.ttspilot = state
    install_error_handlers(app)
    metrics.install(app)
    app.add_middleware(RequestFiles)
    install_guards(app, settings)
    app.add_middleware(AccessLog, stats=stats)
    app.include_router(health.router)
    for family in (optimized, upstream, openai, v1, deploy, voices, benchmark):
        app.include_router(family.router)
    install_web(app)
    return app
