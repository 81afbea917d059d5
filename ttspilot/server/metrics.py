"""Prometheus metrics for /metrics, on a registry per app so several apps never collide."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ttspilot.server.stats import RequestTiming

RTF_BUCKETS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 5.0)
FIRST_AUDIO_BUCKETS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)
STALL_BUCKETS = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # 0.0: streams that never ran dry


class ServerMetrics:
    def __init__(self, queue_depth: Callable[[], float], tier: str, engine: str):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ttspilot_http_requests", "HTTP requests by route and status", ["route", "status"], registry=self.registry
        )
        self.grpc_requests = Counter(
            "ttspilot_grpc_requests", "gRPC calls by method and status code", ["method", "code"], registry=self.registry
        )
        self.syntheses = Counter("ttspilot_syntheses", "Synthesis requests by outcome", ["outcome"], registry=self.registry)
        self.synthesis_seconds = Counter(
            "ttspilot_synthesis_seconds", "Wall time spent on synthesis requests", registry=self.registry
        )
        self.audio_seconds = Counter("ttspilot_audio_seconds", "Audio produced", registry=self.registry)
        self.rtf = Histogram("ttspilot_rtf", "Real-time factor per request", buckets=RTF_BUCKETS, registry=self.registry)
        self.first_audio = Histogram(
            "ttspilot_time_to_first_audio_seconds", "Time to first audio per request",
            buckets=FIRST_AUDIO_BUCKETS, registry=self.registry,
        )
        self.stall = Histogram(
            "ttspilot_stream_stall_seconds",
            "Silence a real-time listener heard after first audio, per streamed request (underrun)",
            buckets=STALL_BUCKETS, registry=self.registry,
        )
        depth = Gauge("ttspilot_queue_depth", "Segments waiting for or running on the worker pool", registry=self.registry)
        depth.set_function(queue_depth)
        active = Gauge("ttspilot_active_tier", "The tier this server runs (value 1)", ["tier", "engine"], registry=self.registry)
        active.labels(tier=tier, engine=engine).set(1)

    def observe(self, timing: RequestTiming) -> None:
        """Called when a synthesis request ends, however it ended."""
        self.syntheses.labels(outcome=timing.outcome).inc()
        self.synthesis_seconds.inc(timing.processing_seconds)
        self.audio_seconds.inc(timing.audio_seconds)
        if timing.outcome == "ok" and timing.rtf is not None:
            self.rtf.observe(timing.rtf)
        if timing.time_to_first_audio is not None:
            self.first_audio.observe(timing.time_to_first_audio)
        if timing.stall_seconds is not None:
            self.stall.observe(timing.stall_seconds)

    def install(self, app: FastAPI) -> None:
        """Count every HTTP request by its route template (not its raw path) and serve /metrics."""
        app.add_middleware(RequestCounter, counter=self.requests)

        @app.get("/metrics", tags=["health"], summary="Prometheus metrics", response_class=PlainTextResponse)
        async def metrics() -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class RequestCounter:
    """Plain ASGI middleware: counts by route template once the router has matched, streams untouched."""

    def __init__(self, app: ASGIApp, counter: Counter):
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500

        async def remember_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.counter.labels(route=route, status=str(status)).inc()
