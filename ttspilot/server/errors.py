"""Map bad input and engine errors to JSON 4xx/503 answers a person can read."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ttspilot.engines.base import EngineLoadError, UnsupportedFeature, VoiceConflict, VoiceNotFound
from ttspilot.engines.cosyvoice.voice_store import InvalidVoiceId
from ttspilot.server.pipeline import Overloaded, SynthesisTimeout


class ErrorDetail(BaseModel):
    message: str
    type: str


class ErrorBody(BaseModel):
    """Every error answer: OpenAI's `error` object plus a top-level `message`."""

    error: ErrorDetail
    message: str


_ERROR_MEANINGS = {
    400: "invalid input (the message says which field and why)",
    401: "missing or invalid API key",
    404: "unknown voice (the valid ones are listed)",
    409: "voice id already taken, or a built-in voice that cannot be deleted",
    413: "text or body too large",
    422: "a field this API does not know (the message names it)",
    503: "engine unavailable or server busy (see Retry-After)",
    504: "synthesis took longer than --request_timeout",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": meaning} for status, meaning in _ERROR_MEANINGS.items()
}


class BadRequest(Exception):
    """Input the server refuses; `status` is the 4xx to answer with."""

    def __init__(self, message: str, status: int = 400):
        self.message = message
        self.status = status
        super().__init__(message)


def error_body(message: str, kind: str) -> dict[str, object]:
    """OpenAI's error shape (so its clients show the message) plus a top-level message for everyone else."""
    return {"error": {"message": message, "type": kind}, "message": message}


# The error `type` for a status Starlette or a guard raises, the same whichever layer refuses.
HTTP_ERROR_TYPES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def error_json(message: str, kind: str) -> bytes:
    """The same body as bytes, for layers below FastAPI's handlers (ASGI guards, the HTTP protocol)."""
    return json.dumps(error_body(message, kind)).encode()


def _field(item: dict[str, Any]) -> str:
    return ".".join(str(p) for p in item.get("loc", ()) if p not in ("query", "body", "form"))


def _describe_validation(error: RequestValidationError) -> tuple[int, str, str]:
    """(status, message, type): 422 naming the fields when every problem is an unknown field, else 400."""
    items = list(error.errors())
    unknown = [_field(item) for item in items if item.get("type") == "extra_forbidden"]
    if items and len(unknown) == len(items):
        return 422, f"unknown field{'s' * (len(unknown) > 1)}: {', '.join(unknown)}", "unknown_field"
    parts = []
    for item in items:
        field = _field(item)
        message = str(item.get("msg", "invalid value")).removeprefix("Value error, ")
        if item.get("type") == "extra_forbidden":
            message = "unknown field"
        parts.append(f"{field}: {message}" if field else message)
    return 400, "; ".join(parts) or "invalid request", "invalid_request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        status, message, kind = _describe_validation(error)
        return JSONResponse(error_body(message, kind), status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        body = error_body(str(error.detail), HTTP_ERROR_TYPES.get(error.status_code, "http_error"))
        return JSONResponse(body, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(BadRequest)
    async def _bad_request(_: Request, error: BadRequest) -> JSONResponse:
        return JSONResponse(error_body(error.message, "invalid_request"), status_code=error.status)

    @app.exception_handler(VoiceNotFound)
    async def _voice(_: Request, error: VoiceNotFound) -> JSONResponse:
        body = error_body(str(error), "voice_not_found") | {"valid_voices": error.valid}
        return JSONResponse(body, status_code=404)

    @app.exception_handler(InvalidVoiceId)
    async def _voice_id(_: Request, error: InvalidVoiceId) -> JSONResponse:
        return JSONResponse(error_body(str(error), "invalid_request"), status_code=400)

    @app.exception_handler(VoiceConflict)
    async def _conflict(_: Request, error: VoiceConflict) -> JSONResponse:
        return JSONResponse(error_body(str(error), "voice_conflict"), status_code=409)

    @app.exception_handler(UnsupportedFeature)
    async def _unsupported(_: Request, error: UnsupportedFeature) -> JSONResponse:
        return JSONResponse(error_body(str(error), "unsupported"), status_code=400)

    @app.exception_handler(Overloaded)
    async def _overloaded(_: Request, error: Overloaded) -> JSONResponse:
        headers = {"Retry-After": str(error.retry_after)}
        return JSONResponse(error_body(str(error), "overloaded"), status_code=503, headers=headers)

    @app.exception_handler(SynthesisTimeout)
    async def _timeout(_: Request, error: SynthesisTimeout) -> JSONResponse:
        return JSONResponse(error_body(str(error), "timeout"), status_code=504)

    @app.exception_handler(EngineLoadError)
    async def _not_loaded(_: Request, error: EngineLoadError) -> JSONResponse:
        return JSONResponse(error_body(error.reason, "engine_unavailable"), status_code=503)
