"""Request and engine errors as gRPC status codes: the same verdicts `server/errors.py` gives HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc

from ttspilot.engines.base import EngineLoadError, UnsupportedFeature, VoiceConflict, VoiceNotFound
from ttspilot.engines.cosyvoice.voice_store import InvalidVoiceId
from ttspilot.server.errors import BadRequest
from ttspilot.server.pipeline import Overloaded, SynthesisTimeout

Metadata = tuple[tuple[str, str], ...]

# HTTP 400/413 -> INVALID_ARGUMENT, 404 -> NOT_FOUND, 409 -> ALREADY_EXISTS, 503 busy -> RESOURCE_EXHAUSTED,
# 504 -> DEADLINE_EXCEEDED, 503 engine not loaded -> UNAVAILABLE.
_CODES: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (BadRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (UnsupportedFeature, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidVoiceId, grpc.StatusCode.INVALID_ARGUMENT),
    (VoiceNotFound, grpc.StatusCode.NOT_FOUND),
    (VoiceConflict, grpc.StatusCode.ALREADY_EXISTS),
    (Overloaded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (SynthesisTimeout, grpc.StatusCode.DEADLINE_EXCEEDED),
    (EngineLoadError, grpc.StatusCode.UNAVAILABLE),
)


def status_for(error: Exception) -> tuple[grpc.StatusCode, str, Metadata] | None:
    """(code, message, trailing metadata) for an error the client should read; None for a server fault."""
    code = next((code for kind, code in _CODES if isinstance(error, kind)), None)
    if code is None:
        return None
    message = error.message if isinstance(error, BadRequest) else str(error)
    trailing = (("retry-after", str(error.retry_after)),) if isinstance(error, Overloaded) else ()
    return code, message, trailing


@asynccontextmanager
async def answering_errors(context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
    """End the call with the status its error maps to; anything else stays a server fault (UNKNOWN, logged)."""
    try:
        yield
    except Exception as error:
        found = status_for(error)
        if found is None:
            raise
        code, message, trailing = found
        await context.abort(code, message, trailing_metadata=trailing)
