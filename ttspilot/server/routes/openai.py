"""OpenAI-compatible speech: POST /v1/audio/speech, GET /v1/models, GET /v1/audio/voices.

OpenAI voice names map to this server's voices through `ServerSettings.openai_voices`
(env TTSPILOT_OPENAI_VOICES as JSON); a name not in the map speaks with the default voice,
and this server's own voice ids work as they are. Like OpenAI, the body streams by default
(a WAV then says "unknown length" in its header); `"stream": false` sends a whole file with
exact sizes and timing headers, and `"stream_format": "sse"` sends OpenAI's speech events.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from ttspilot.encoders import AUDIO_RESPONSE
from ttspilot.engines.base import Style, UnsupportedFeature, VoiceNotFound
from ttspilot.server.errors import ERROR_RESPONSES, BadRequest
from ttspilot.server.jobs import make_job
from ttspilot.server.pipeline import SynthesisJob
from ttspilot.server.responses import (
    audio_started,
    encoded_chunks,
    request_id,
    respond,
    stream_headers,
    warning_headers,
)
from ttspilot.server.state import ServerState
from ttspilot.server.styles import instruction_style

router = APIRouter(tags=["OpenAI"], responses=ERROR_RESPONSES)

OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse", "marin", "cedar",
)
OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
OPENAI_SPEED = (0.25, 4.0)
SPEECH_RESPONSE: dict[int | str, dict] = {
    200: {
        "description": "audio in the requested format, or speech.audio.* events with stream_format sse",
        "content": AUDIO_RESPONSE[200]["content"] | {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


class VoiceId(BaseModel):
    """OpenAI's custom-voice form, `{"id": "..."}`."""

    id: str


class SpeechRequest(BaseModel):
    model: str = Field(default="tts-1", description="any id from /v1/models")
    input: str = Field(default="", description="text to speak")
    voice: str | VoiceId = Field(
        default="alloy", description='an OpenAI voice name or a voice id from /v1/audio/voices (also as {"id": ...})'
    )
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(default=1.0, ge=OPENAI_SPEED[0], le=OPENAI_SPEED[1], description="OpenAI's range, 0.25 to 4.0")
    stream: bool = Field(
        default=True,
        description="send the body as it is produced (false: whole file with exact length and timing headers)",
    )
    stream_format: Literal["audio", "sse"] = Field(
        default="audio",
        description="audio: the file's bytes; sse: server-sent events speech.audio.delta (base64 `audio`) then "
        "speech.audio.done (`usage` counts input characters as tokens)",
    )
    instructions: str | None = Field(
        default=None,
        description="CosyVoice's instruct mode: instruct2 with a registered voice (v2/v3), instruct with a built-in "
        "one (v1 -Instruct models); otherwise ignored and the response's Warning header says so",
    )


def model_ids(state: ServerState) -> list[str]:
    return [*OPENAI_MODELS, f"ttspilot-{state.engine.name}"]


def voice_aliases(state: ServerState) -> dict[str, str]:
    """Every OpenAI voice name and what it speaks with here."""
    return {name: state.settings.openai_voices.get(name, state.engine.default_voice) for name in OPENAI_VOICES} | dict(
        state.settings.openai_voices
    )


def resolve_voice(state: ServerState, voice: str | VoiceId) -> str:
    """This server's voice for an OpenAI name or own id; unknown ones are VoiceNotFound (404) as in every family."""
    name = voice.id if isinstance(voice, VoiceId) else voice
    own = [v.id for v in state.engine.voices()]
    if name in own:
        return name
    aliases = voice_aliases(state)
    if name in aliases:
        return aliases[name]
    raise VoiceNotFound(name, [*aliases, *own])


def openai_instructions(state: ServerState, voice: str, instructions: str | None) -> tuple[Style, list[str]]:
    """CosyVoice's instruct mode for `instructions` where the engine and voice allow it; else a Warning notice."""
    if not instructions:
        return Style(), []
    try:
        return instruction_style(state.engine, voice, instructions), []
    except UnsupportedFeature:
        return Style(), [f"instructions ignored: engine {state.engine.name} cannot follow instructions"]
    except BadRequest as error:
        return Style(), [f"instructions ignored: {error.message}"]


def _event(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


async def _speech_events(audio: AsyncGenerator[np.ndarray, None], job: SynthesisJob) -> AsyncIterator[bytes]:
    """OpenAI's stream_format=sse: one speech.audio.delta per encoded chunk, then speech.audio.done."""
    async for data in encoded_chunks(audio, job):
        yield _event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()})
    usage = {"input_tokens": len(job.text), "output_tokens": 0, "total_tokens": len(job.text)}
    yield _event({"type": "speech.audio.done", "usage": usage})


@router.post("/v1/audio/speech", summary="OpenAI-compatible text to speech", responses=SPEECH_RESPONSE)
async def speech(request: Request, body: SpeechRequest) -> Response:
    state: ServerState = request.app.state.ttspilot
    if body.model not in model_ids(state):
        raise BadRequest(f"model {body.model!r} is unknown; valid models: {', '.join(model_ids(state))}")
    voice = resolve_voice(state, body.voice)
    style, notices = openai_instructions(state, voice, body.instructions)
    job = make_job(
        state.engine, state.settings, text=body.input, voice=voice, speed=body.speed,
        sample_rate=state.settings.openai_sample_rate, audio_format=body.response_format,
        stream=body.stream or body.stream_format == "sse", text_field="input", speed_range=OPENAI_SPEED, style=style,
    )
    timing = state.pipeline.start(job, request_id(request), "/v1/audio/speech")
    if body.stream_format == "sse":
        headers = stream_headers(job, timing) | warning_headers(state.engine, job, timing, notices)
        events = _speech_events(await audio_started(state.pipeline, job, timing), job)
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    return await respond(state.pipeline, job, timing, notices)


@router.get("/v1/models", summary="Model ids accepted by /v1/audio/speech")
async def models(request: Request) -> dict[str, Any]:
    state: ServerState = request.app.state.ttspilot
    data = [{"id": model, "object": "model", "created": 0, "owned_by": "ttspilot"} for model in model_ids(state)]
    return {"object": "list", "data": data}


@router.get("/v1/audio/voices", summary="Voices and the OpenAI names that map to them")
async def voices(request: Request) -> dict[str, Any]:
    state: ServerState = request.app.state.ttspilot
    own = [{"id": v.id, "name": v.name, "language": v.language, "kind": v.kind} for v in state.engine.voices()]
    return {"voices": own, "openai_aliases": voice_aliases(state), "default": state.engine.default_voice}
