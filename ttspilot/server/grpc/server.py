"""The gRPC server: started and stopped by the app's lifespan, on uvicorn's event loop, so it shares the
pipeline, admission, stats and metrics with HTTP instead of a copy of them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ttspilot.server.grpc.interceptors import ApiKeyCheck, CallCounter, TolerantParsing
from ttspilot.server.grpc.protos import cosyvoice_pb2, cosyvoice_pb2_grpc, speech_pb2, speech_pb2_grpc
from ttspilot.server.grpc.speech import SpeechService
from ttspilot.server.grpc.upstream import CosyVoiceService
from ttspilot.server.metrics import ServerMetrics
from ttspilot.server.state import ServerState

log = logging.getLogger(__name__)

SERVICES = (
    cosyvoice_pb2.DESCRIPTOR.services_by_name["CosyVoice"].full_name,
    speech_pb2.DESCRIPTOR.services_by_name["Speech"].full_name,
)
HEALTH_INTERVAL_S = 0.5  # how often readiness and stuck calls are read for Watch streams


class CurrentHealth(health.aio.HealthServicer):
    """The standard health servicer, read afresh on every Check (what probes call), so it never lags /health;
    Watch streams get changes from the server's poll."""

    def __init__(self, refresh: Callable[[], Awaitable[None]]):
        super().__init__()
        self.refresh = refresh

    async def Check(self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
                    ) -> health_pb2.HealthCheckResponse:
        await self.refresh()
        return await super().Check(request, context)


class GrpcServer:
    def __init__(self, state: ServerState, metrics: ServerMetrics):
        self.state = state
        self.metrics = metrics
        self.health = CurrentHealth(self._update_health)
        self.server: grpc.aio.Server | None = None
        self._health_task: asyncio.Task[None] | None = None
        self._status: int | None = None  # last status given to the health service

    async def start(self) -> int:
        """Bind --host:--grpc_port and serve; the bound port (--grpc_port 0 picks a free one).

        RuntimeError when the port cannot be bound, which stops the server's start-up."""
        settings = self.state.settings
        interceptors = [CallCounter(self.metrics.grpc_requests)]
        interceptors += [ApiKeyCheck(settings.api_key)] if settings.api_key else []
        interceptors.append(TolerantParsing())
        self.server = grpc.aio.server(interceptors=interceptors, options=[
            ("grpc.max_receive_message_length", settings.max_body_bytes),  # the HTTP body limit, same flag
            ("grpc.so_reuseport", 0),  # a port another process holds is an error, not a shared port
        ])
        cosyvoice_pb2_grpc.add_CosyVoiceServicer_to_server(CosyVoiceService(self.state), self.server)
        speech_pb2_grpc.add_SpeechServicer_to_server(SpeechService(self.state), self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection((*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server)
        await self._update_health()
        address = f"[{settings.host}]:{settings.grpc_port}" if ":" in settings.host else \
            f"{settings.host}:{settings.grpc_port}"
        try:
            port = self.server.add_insecure_port(address)
        except RuntimeError as error:
            log.error("gRPC cannot listen on %s (port taken, or no such address): %s", address, error)
            raise
        await self.server.start()
        self._health_task = asyncio.create_task(self._watch_health())
        log.info("gRPC on %s:%d: %s, health, reflection; messages up to %d bytes (--max_body_bytes)%s",
                 settings.host, port, ", ".join(SERVICES), settings.max_body_bytes,
                 "; API key required but for health" if settings.api_key else "")
        return port

    async def _update_health(self) -> None:
        """SERVING exactly when /health answers 200: ready (canary passed) and no engine call stuck."""
        status = (health_pb2.HealthCheckResponse.SERVING if self.state.unhealthy_reason() is None
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        if status != self._status:
            self._status = status
            for service in ("", *SERVICES):
                await self.health.set(service, status)

    async def _watch_health(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_S)
            await self._update_health()

    async def stop(self, grace: float) -> None:
        """NOT_SERVING at once (probes move traffic away), then in-flight calls get `grace` seconds."""
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
        await self.health.enter_graceful_shutdown()
        if self.server is not None:
            await self.server.stop(grace)
