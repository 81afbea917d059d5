"""The deploy API (Fun-CosyVoice3 deploy clients): POST /tts/stream and /tts/zero_shot -> PCM s16le at the family's rate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from ttspilot.encoders import AUDIO_RESPONSE
from ttspilot.engines.base import Style
from ttspilot.server.errors import ERROR_RESPONSES, BadRequest
from ttspilot.server.jobs import make_job
from ttspilot.server.prompt_upload import save_prompt
from ttspilot.server.responses import request_id, respond
from ttspilot.server.state import ServerState
from ttspilot.server.styles import prompt_style

router = APIRouter(tags=["deploy API"], responses=ERROR_RESPONSES)

Text = Annotated[str, Form(description="text to speak")]
PromptText = Annotated[str | None, Form(description="exact transcript of prompt_wav")]
PromptWav = Annotated[UploadFile | None, File(description="voice prompt recording: 16 kHz or more, 1-30 s")]
Speaker = Annotated[str | None, Form(description="voice id (a registered voice clones); empty for the default voice")]


async def _speak(request: Request, route: str, *, text: str, speaker: str | None, prompt_text: str | None,
                 prompt_wav: UploadFile | None, zero_shot: bool) -> Response:
    """Zero-shot when asked or when a prompt comes along; the capability 400 comes before the upload is read."""
    state: ServerState = request.app.state.ttspilot
    style = Style()
    if zero_shot or prompt_wav is not None or prompt_text:
        state.engine.capabilities.require("zero_shot", state.engine.name)
        if prompt_text and prompt_wav is None:
            raise BadRequest("prompt_text is the transcript of prompt_wav: upload prompt_wav with it, or leave it "
                             "out to speak with a registered speaker")
        wav = None if prompt_wav is None else await save_prompt(request, prompt_wav)
        style = prompt_style(state.engine, "zero_shot", voice=speaker, prompt_wav=wav, prompt_text=prompt_text or "",
                             voice_field="speaker")
    job = make_job(
        state.engine, state.settings, text=text, voice=speaker,
        sample_rate=state.settings.output_sample_rate or state.settings.deploy_sample_rate,
        audio_format="pcm", stream=True, style=style,
    )
    return await respond(state.pipeline, job, state.pipeline.start(job, request_id(request), route))


@router.post("/tts/stream", summary="Stream PCM s16le (16 kHz unless --output_sample_rate); X-Sample-Rate says", responses=AUDIO_RESPONSE)
async def tts_stream(request: Request, text: Text = "", prompt_text: PromptText = None, prompt_wav: PromptWav = None,
                     speaker: Speaker = None) -> Response:
    return await _speak(request, "/tts/stream", text=text, speaker=speaker, prompt_text=prompt_text,
                        prompt_wav=prompt_wav, zero_shot=False)


@router.post("/tts/zero_shot", summary="Clone prompt_wav's voice, or a registered speaker's, as streamed PCM s16le",
             responses=AUDIO_RESPONSE)
async def tts_zero_shot(request: Request, text: Text = "", prompt_text: PromptText = None,
                        prompt_wav: PromptWav = None, speaker: Speaker = None) -> Response:
    return await _speak(request, "/tts/zero_shot", text=text, speaker=speaker, prompt_text=prompt_text,
                        prompt_wav=prompt_wav, zero_shot=True)
