"""Map bad input and engine errors to JSON 4xx/503 answers a person can read."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ttspilot.engines.base import EngineLoadError, UnsupportedFeature, VoiceNotFound


class BadRequest(Exception):
    """Input the server refuses; `status` is the 4xx to answer with."""

    def __init__(self, message: str, status: int = 400):
        self.message = message
        self.status = status
        super().__init__(message)


def error_body(message: str, kind: str) -> dict[str, object]:
    """OpenAI's error shape (so its clients show the message) plus a top-level message for everyone else."""
    return {"error": {"message": message, "type": kind}, "message": message}


def _describe_validation(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        field = ".".join(str(p) for p in item.get("loc", ()) if p not in ("query", "body", "form"))
        message = str(item.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(_describe_validation(error), "invalid_request"), status_code=400)

    @app.exception_handler(BadRequest)
    async def _bad_request(_: Request, error: BadRequest) -> JSONResponse:
        return JSONResponse(error_body(error.message, "invalid_request"), status_code=error.status)

    @app.exception_handler(VoiceNotFound)
    async def _voice(_: Request, error: VoiceNotFound) -> JSONResponse:
        body = error_body(str(error), "voice_not_found") | {"valid_voices": error.valid}
        return JSONResponse(body, status_code=404)

    @app.exception_handler(UnsupportedFeature)
    async def _unsupported(_: Request, error: UnsupportedFeature) -> JSONResponse:
        return JSONResponse(error_body(str(error), "unsupported"), status_code=400)

    @app.exception_handler(EngineLoadError)
    async def _not_loaded(_: Request, error: EngineLoadError) -> JSONResponse:
        return JSONResponse(error_body(error.reason, "engine_unavailable"), status_code=503)
