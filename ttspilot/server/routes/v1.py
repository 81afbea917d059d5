"""The v1 API: POST /v1/tts (whole file), POST /v1/tts/stream (chunked WAV), WS /ws/tts.

`speaker` may be a registered voice (cloned, POST /voices); `instruct_text` asks for CosyVoice's instruct mode.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from contextlib import aclosing
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from ttspilot.audio import pcm_bytes
from ttspilot.encoders import AUDIO_RESPONSE
from ttspilot.engines.base import EngineError, Style
from ttspilot.server.errors import ERROR_RESPONSES, BadRequest
from ttspilot.server.jobs import make_job
from ttspilot.server.pipeline import Overloaded, SynthesisJob, SynthesisTimeout
from ttspilot.server.responses import request_id, respond
from ttspilot.server.state import ServerState
from ttspilot.server.styles import instruction_style

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
    instruct_text: str | None = Field(
        default=None, description="how to speak (CosyVoice instruct): needs a registered voice on v2/v3, a built-in "
        "one on v1 -Instruct models; 400 where the engine or voice cannot follow it",
    )


def _job(state: ServerState, body: TtsRequest, stream: bool, audio_format: str) -> SynthesisJob:
    style = Style() if body.instruct_text is None else instruction_style(
        state.engine, body.speaker, body.instruct_text, voice_field="speaker")
    return make_job(
        state.engine, state.settings, text=body.text, voice=body.speaker, speed=body.speed,
        sample_rate=body.sample_rate, audio_format=audio_format, stream=stream, style=style,
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


# Requests a client may send ahead on one socket while the current one speaks.
MAX_PENDING_MESSAGES = 8
WsMessage = str | bytes


async def _speak(websocket: WebSocket, state: ServerState, message: WsMessage) -> None:
    """One request on the socket: audio_chunk messages, then done; bad input answers with an error message."""
    if isinstance(message, bytes):
        why = 'binary frames are not read: send JSON text like {"text": "..."}'
        await websocket.send_json({"type": "error", "message": why})
        return
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
        timing = state.pipeline.start(job, f"ws-{uuid.uuid4().hex}", "/ws/tts")
    except Overloaded as error:
        await websocket.send_json({"type": "error", "message": str(error), "retry_after": error.retry_after})
        return
    try:
        # The deadline covers sending too; a client that reads nothing is dropped sooner (--write_timeout).
        with anyio.fail_after(state.pipeline.seconds_left(timing)):  # asyncio.timeout is Python 3.11+
            async with aclosing(state.pipeline.audio(job, timing)) as chunks:
                async for chunk in chunks:
                    data = base64.b64encode(pcm_bytes(chunk)).decode()
                    await websocket.send_json({"type": "audio_chunk", "data": data, "sample_rate": job.sample_rate})
    except (EngineError, SynthesisTimeout) as error:
        await websocket.send_json({"type": "error", "message": f"synthesis failed: {error}"})
        return
    except TimeoutError:
        limit = state.settings.request_timeout
        await websocket.send_json({"type": "error", "message": f"request took longer than {limit:g} s"})
        return
    done: dict[str, Any] = {"type": "done"} | {
        key: value for key, value in timing.as_dict().items() if key not in ("route", "outcome", "characters")
    }
    await websocket.send_json(done)


async def _read(websocket: WebSocket, inbox: asyncio.Queue[WsMessage | None]) -> None:
    """Keep reading while requests speak: uvicorn stops reading (keepalive pongs included) until the app receives."""
    try:
        while (message := await websocket.receive())["type"] != "websocket.disconnect":
            if inbox.qsize() >= MAX_PENDING_MESSAGES:
                why = f"{MAX_PENDING_MESSAGES} requests already wait on this socket; send the next after a done"
                await websocket.send_json({"type": "error", "message": why, "retry_after": 1})
            else:
                inbox.put_nowait(message["text"] if message.get("text") is not None else message.get("bytes") or b"")
    except WebSocketDisconnect:
        pass
    finally:
        inbox.put_nowait(None)  # the speaking side stops after the current request


@router.websocket("/ws/tts")
async def ws_tts(websocket: WebSocket) -> None:
    state: ServerState = websocket.app.state.ttspilot
    await websocket.accept()
    inbox: asyncio.Queue[WsMessage | None] = asyncio.Queue()
    reader = asyncio.create_task(_read(websocket, inbox))
    try:
        while (message := await inbox.get()) is not None:
            await _speak(websocket, state, message)
    except WebSocketDisconnect:
        return
    finally:
        reader.cancel()
