"""What every gRPC call goes through, as HTTP's middleware: counted and logged, the API key, tolerant parsing.

Each interceptor wraps the method's behaviour in the handler gRPC looked up (an async function, or
an async generator for streams that yield), so one wrapper serves unary and streaming methods alike.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from prometheus_client import Counter

from ttspilot.server.guards import key_from, key_matches

log = logging.getLogger("ttspilot.access")

Behaviour = Callable[..., Any]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]
_KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
HEALTH_PREFIX = "/grpc.health.v1.Health/"  # open without a key, as /health is: probes send no metadata


def _wrapped(handler: grpc.RpcMethodHandler | None, wrap: Callable[[Behaviour], Behaviour]) -> grpc.RpcMethodHandler | None:
    """The handler with its behaviour wrapped; None (no such method) stays None, gRPC answers UNIMPLEMENTED."""
    if handler is None:
        return None
    kind = next(kind for kind in _KINDS if getattr(handler, kind) is not None)
    return handler._replace(**{kind: wrap(getattr(handler, kind))})


def _final_code(error: BaseException | None, context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    """The status the client gets: the one set or aborted with, DEADLINE_EXCEEDED or CANCELLED for a call gRPC
    ended (the client's deadline, the client gone), UNKNOWN for a server fault."""
    if error is None or isinstance(error, grpc.aio.AbortError):
        return context.code() or grpc.StatusCode.OK  # None: never set, the call succeeded
    if not isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.UNKNOWN
    remaining = context.time_remaining()
    return grpc.StatusCode.DEADLINE_EXCEEDED if remaining is not None and remaining <= 0 else grpc.StatusCode.CANCELLED


def _around(behaviour: Behaviour, before: Callable[[Any, grpc.aio.ServicerContext], Awaitable[None]],
            after: Callable[[grpc.StatusCode], None] = lambda _: None) -> Behaviour:
    """`behaviour` with `before(request, context)` first and `after(code)` once the call has ended, however."""
    if inspect.isasyncgenfunction(behaviour):
        async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
            error: BaseException | None = None
            try:
                await before(request, context)
                async for item in behaviour(request, context):
                    yield item
            except BaseException as raised:
                error = raised
                raise
            finally:
                after(_final_code(error, context))
        return stream

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        error: BaseException | None = None
        try:
            await before(request, context)
            return await behaviour(request, context)
        except BaseException as raised:
            error = raised
            raise
        finally:
            after(_final_code(error, context))
    return call


async def _nothing(request: Any, context: grpc.aio.ServicerContext) -> None:
    pass


class CallCounter(grpc.aio.ServerInterceptor):
    """Counts every call by method and final status on /metrics (`ttspilot_grpc_requests`) and logs one line."""

    def __init__(self, counter: Counter):
        self.counter = counter

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails
                                ) -> grpc.RpcMethodHandler | None:
        started = time.perf_counter()

        def record(code: grpc.StatusCode) -> None:
            self.counter.labels(method=details.method, code=code.name).inc()
            log.info("gRPC %s %s %.3f s", details.method, code.name, time.perf_counter() - started)

        return _wrapped(await continuation(details), lambda behaviour: _around(behaviour, _nothing, record))


class ApiKeyCheck(grpc.aio.ServerInterceptor):
    """UNAUTHENTICATED without the key in `authorization: Bearer <key>` or `x-api-key` metadata; health stays open."""

    def __init__(self, api_key: str):
        self.api_key = api_key

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails
                                ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        metadata = {key.lower(): value for key, value in details.invocation_metadata or () if isinstance(value, str)}
        if details.method.startswith(HEALTH_PREFIX) or key_matches(key_from(metadata), self.api_key):
            return handler

        async def refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                "missing or invalid API key: send metadata authorization: Bearer <key> or x-api-key")

        return _wrapped(handler, lambda behaviour: _around(behaviour, refuse))


class Undecodable:
    """A request message protobuf could not parse (a string field that is not UTF-8, truncated bytes)."""

    def __init__(self, why: str):
        self.why = why


class TolerantParsing(grpc.aio.ServerInterceptor):
    """A message that does not parse is INVALID_ARGUMENT with the reason, not gRPC's INTERNAL for a server fault."""

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails
                                ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        parse = handler.request_deserializer

        def tolerant(data: bytes) -> Any:
            try:
                return parse(data)
            except DecodeError as error:
                return Undecodable(str(error))

        async def refuse_undecodable(request: Any, context: grpc.aio.ServicerContext) -> None:
            if isinstance(request, Undecodable):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"the request is not a valid message for {details.method}: {request.why} "
                                    "(string fields must be UTF-8)")

        return _wrapped(handler._replace(request_deserializer=tolerant),
                        lambda behaviour: _around(behaviour, refuse_undecodable))
