"""The v1 API: POST /v1/tts (whole file), POST /v1/tts/stream (chunked WAV), WS /ws/tts."""

from __future__ import annotations

import base64
import json
from contextlib import aclosing
from typing import Any, Literal

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from ttspilot.audio import pcm_bytes
from ttspilot.encoders import AUDIO_RESPONSE
from ttspilot.engines.base import EngineError
from ttspilot.server.errors import ERROR_RESPONSES, BadRequest
from ttspilot.server.jobs import make_job
from ttspilot.server.pipeline import Overloaded, SynthesisJob, SynthesisTimeout
from ttspilot.server.responses import request_id, respond
from ttspilot.server.state import ServerState

router = APIRouter(tags=["v1 API"], responses=ERROR_RESPONSES)


class TtsRequest(BaseModel):
    """A field this API does not know is refused (422), not ignored: a typo never speaks in the wrong voice."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(default="", description="text to speak")
    speaker: str | None = Field(
        default=None, validation_alias=AliasChoices("speaker", "voice"),
        description="voice id (also accepted as `voice`); empty for the default voice",
    )
    format: Literal["wav", "pcm", "mp3", "flac", "opus", "aac"] = "wav"
    speed: float = 1.0
    sample_rate: int | None = None


def _job(state: ServerState, body: TtsRequest, stream: bool, audio_format: str) -> SynthesisJob:
    return make_job(
        state.engine, state.settings, text=body.text, voice=body.speaker, speed=body.speed,
        sample_rate=body.sample_rate, audio_format=audio_format, stream=stream,
    )


@router.post("/v1/tts", summary="Text to a whole audio file", responses=AUDIO_RESPONSE)
async def tts(request: Request, body: TtsRequest) -> Response:
    state: ServerState = request.app.state.ttspilot
    job = _job(state, body, stream=False, audio_format=body.format)
    return await respond(state.pipeline, job, state.pipeline.start(job, request_id(request), "/v1/tts"))


@router.post("/v1/tts/stream", summary="Text to chunked audio, WAV by default, playable while it arrives", responses=AUDIO_RESPONSE)
async def tts_stream(request: Request, body: TtsRequest) -> Response:
    state: ServerState = request.app.state.ttspilot
    job = _job(state, body, stream=True, audio_format=body.format)
    return await respond(state.pipeline, job, state.pipeline.start(job, request_id(request), "/v1/tts/stream"))


def _readable(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())


async def _speak(websocket: WebSocket, state: ServerState, message: str, number: int) -> None:
    """One request on the socket: audio_chunk messages, then done; bad input answers with an error message."""
    try:
        body = TtsRequest.model_validate(json.loads(message))
        job = _job(state, body, stream=True, audio_format="pcm")
    except json.JSONDecodeError:
        await websocket.send_json({"type": "error", "message": "message is not JSON: send {\"text\": \"...\"}"})
        return
    except ValidationError as error:
        await websocket.send_json({"type": "error", "message": _readable(error)})
        return
    except (BadRequest, EngineError) as error:
        await websocket.send_json({"type": "error", "message": getattr(error, "message", str(error))})
        return
    try:
        timing = state.pipeline.start(job, f"ws-{id(websocket):x}-{number}", "/ws/tts")
    except Overloaded as error:
        await websocket.send_json({"type": "error", "message": str(error), "retry_after": error.retry_after})
        return
    try:
        async with aclosing(state.pipeline.audio(job, timing)) as chunks:
            async for chunk in chunks:
                data = base64.b64encode(pcm_bytes(chunk)).decode()
                await websocket.send_json({"type": "audio_chunk", "data": data, "sample_rate": job.sample_rate})
    except (EngineError, SynthesisTimeout) as error:
        await websocket.send_json({"type": "error", "message": f"synthesis failed: {error}"})
        return
    done: dict[str, Any] = {"type": "done"} | {
        key: value for key, value in timing.as_dict().items() if key not in ("route", "outcome", "characters")
    }
    await websocket.send_json(done)


@router.websocket("/ws/tts")
async def ws_tts(websocket: WebSocket) -> None:
    state: ServerState = websocket.app.state.ttspilot
    await websocket.accept()
    number = 0
    try:
        while True:
            message = await websocket.receive_text()
            number += 1
            await _speak(websocket, state, message, number)
    except WebSocketDisconnect:
        return
