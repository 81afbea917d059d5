"""OpenAI-compatible speech: POST /v1/audio/speech, GET /v1/models, GET /v1/audio/voices.

OpenAI voice names map to this server's voices through `ServerSettings.openai_voices`
(env TTSPILOT_OPENAI_VOICES as JSON); a name not in the map speaks with the default voice,
and this server's own voice ids work as they are.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ttspilot.encoders import AUDIO_RESPONSE
from ttspilot.server.errors import ERROR_RESPONSES, BadRequest
from ttspilot.server.jobs import make_job
from ttspilot.server.responses import request_id, respond
from ttspilot.server.state import ServerState

router = APIRouter(tags=["OpenAI"], responses=ERROR_RESPONSES)

OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse")
OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")


class SpeechRequest(BaseModel):
    model: str = Field(default="tts-1", description="any id from /v1/models")
    input: str = Field(default="", description="text to speak")
    voice: str = Field(default="alloy", description="an OpenAI voice name or a voice id from /v1/audio/voices")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = 1.0
    stream: bool = Field(default=True, description="send the body as it is produced (false: whole file with timing headers)")
    instructions: str | None = Field(default=None, description="accepted for compatibility; engines without instruct ignore it")


def model_ids(state: ServerState) -> list[str]:
    return [*OPENAI_MODELS, f"ttspilot-{state.engine.name}"]


def voice_aliases(state: ServerState) -> dict[str, str]:
    """Every OpenAI voice name and what it speaks with here."""
    return {name: state.settings.openai_voices.get(name, state.engine.default_voice) for name in OPENAI_VOICES} | dict(
        state.settings.openai_voices
    )


def resolve_voice(state: ServerState, voice: str) -> str:
    own = [v.id for v in state.engine.voices()]
    if voice in own:
        return voice
    aliases = voice_aliases(state)
    if voice in aliases:
        return aliases[voice]
    raise BadRequest(f"voice {voice!r} is unknown; valid voices: {', '.join([*aliases, *own])}")


@router.post("/v1/audio/speech", summary="OpenAI-compatible text to speech", responses=AUDIO_RESPONSE)
async def speech(request: Request, body: SpeechRequest) -> Response:
    state: ServerState = request.app.state.ttspilot
    if body.model not in model_ids(state):
        raise BadRequest(f"model {body.model!r} is unknown; valid models: {', '.join(model_ids(state))}")
    job = make_job(
        state.engine, state.settings, text=body.input, voice=resolve_voice(state, body.voice), speed=body.speed,
        sample_rate=state.settings.openai_sample_rate, audio_format=body.response_format, stream=body.stream,
        text_field="input",
    )
    return await respond(state.pipeline, job, state.pipeline.start(job, request_id(request), "/v1/audio/speech"))


@router.get("/v1/models", summary="Model ids accepted by /v1/audio/speech")
async def models(request: Request) -> dict[str, Any]:
    state: ServerState = request.app.state.ttspilot
    data = [{"id": model, "object": "model", "created": 0, "owned_by": "ttspilot"} for model in model_ids(state)]
    return {"object": "list", "data": data}


@router.get("/v1/audio/voices", summary="Voices and the OpenAI names that map to them")
async def voices(request: Request) -> dict[str, Any]:
    state: ServerState = request.app.state.ttspilot
    own = [{"id": v.id, "name": v.name, "language": v.language} for v in state.engine.voices()]
    return {"voices": own, "openai_aliases": voice_aliases(state), "default": state.engine.default_voice}
