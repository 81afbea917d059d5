"""The deploy API (Fun-CosyVoice3 deploy clients): POST /tts/stream -> PCM s16le at the family's rate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from ttspilot.encoders import AUDIO_RESPONSE
from ttspilot.engines.base import UnsupportedFeature
from ttspilot.server.errors import ERROR_RESPONSES
from ttspilot.server.jobs import make_job
from ttspilot.server.responses import request_id, respond
from ttspilot.server.state import ServerState

router = APIRouter(tags=["deploy API"], responses=ERROR_RESPONSES)


@router.post("/tts/stream", summary="Stream PCM s16le (16 kHz unless --output_sample_rate); X-Sample-Rate says", responses=AUDIO_RESPONSE)
async def tts_stream(
    request: Request,
    text: Annotated[str, Form(description="text to speak")] = "",
    prompt_text: Annotated[str | None, Form(description="transcript of prompt_wav (zero-shot engines)")] = None,
    prompt_wav: Annotated[UploadFile | None, File(description="voice prompt (zero-shot engines)")] = None,
    speaker: Annotated[str | None, Form(description="voice id; empty for the default voice")] = None,
) -> Response:
    state: ServerState = request.app.state.ttspilot
    if (prompt_wav is not None or prompt_text) and not state.engine.capabilities.zero_shot:
        raise UnsupportedFeature(f"voice prompts (zero-shot) are not supported by this engine ({state.engine.name})")
    job = make_job(
        state.engine, state.settings, text=text, voice=speaker,
        sample_rate=state.settings.output_sample_rate or state.settings.deploy_sample_rate,
        audio_format="pcm", stream=True,
    )
    return await respond(state.pipeline, job, state.pipeline.start(job, request_id(request), "/tts/stream"))
