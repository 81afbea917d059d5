"""Upstream CosyVoice's own server API: /inference_zero_shot, /inference_cross_lingual, /inference_instruct(2).

Fields as upstream's own FastAPI server takes them, form fields plus a `prompt_wav` upload, by
GET (upstream's client sends its form as the body of a GET) or POST. The answer is what upstream
sends: raw PCM s16le at the model's rate, streamed as each piece is made, here with X-Sample-Rate
and X-Request-ID. Where upstream takes a `prompt_wav`, `spk_id` may instead name a registered
voice (POST /voices). See docs/architecture.md, "Request path".
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import StreamingResponse

from ttspilot.encoders import AUDIO_RESPONSE
from ttspilot.engines.base import Mode, Style
from ttspilot.server.errors import ERROR_RESPONSES
from ttspilot.server.jobs import make_job
from ttspilot.server.prompt_upload import save_prompt
from ttspilot.server.responses import request_id, streaming_response
from ttspilot.server.state import ServerState
from ttspilot.server.styles import prompt_style

router = APIRouter(tags=["upstream CosyVoice API"], responses=ERROR_RESPONSES)
METHODS = ["GET", "POST"]

TtsText = Annotated[str, Form(description="text to speak")]
SpkId = Annotated[str | None, Form(description="a registered voice, used when no prompt_wav is uploaded")]
PromptWav = Annotated[UploadFile | None, File(description="voice prompt recording: 16 kHz or more, 1-30 s")]
InstructText = Annotated[str, Form(description="how to speak: style, emotion, speed")]


async def upstream_pcm(
    request: Request, route: str, *, text: str, voice: str | None, style: Style = Style(), speed: float = 1.0,
    stream: bool = False, segment_max_length: int | None = None, smart_split: bool = True,
) -> StreamingResponse:
    """Raw PCM s16le at the model's rate, a chunk per piece as upstream's server sends it."""
    state: ServerState = request.app.state.ttspilot
    job = make_job(
        state.engine, state.settings, text=text, voice=voice, speed=speed, sample_rate=state.engine.sample_rate,
        audio_format="pcm", stream=stream, segment_max_length=segment_max_length, smart_split=smart_split,
        style=style, text_field="tts_text",
    )
    return await streaming_response(state.pipeline, job, state.pipeline.start(job, request_id(request), route))


async def _prompted(
    request: Request, mode: Mode, route: str, *, text: str, voice: str | None, upload: UploadFile | None,
    prompt_text: str = "", instruct_text: str = "",
) -> StreamingResponse:
    """The mode is checked before the upload is read: an engine without it answers its 400 first."""
    engine = request.app.state.ttspilot.engine
    engine.capabilities.require(mode, engine.name)
    wav = None if upload is None else await save_prompt(request, upload)
    style = prompt_style(engine, mode, voice=voice, prompt_wav=wav, prompt_text=prompt_text,
                         instruct_text=instruct_text)
    return await upstream_pcm(request, route, text=text, voice=voice, style=style)


@router.api_route("/inference_zero_shot", methods=METHODS, summary="Clone the prompt's voice (raw PCM s16le)",
                  responses=AUDIO_RESPONSE)
async def inference_zero_shot(
    request: Request,
    tts_text: TtsText = "",
    prompt_text: Annotated[str, Form(description="exact transcript of prompt_wav")] = "",
    prompt_wav: PromptWav = None,
    spk_id: SpkId = None,
) -> StreamingResponse:
    return await _prompted(request, "zero_shot", "/inference_zero_shot", text=tts_text, voice=spk_id,
                           upload=prompt_wav, prompt_text=prompt_text)


@router.api_route("/inference_cross_lingual", methods=METHODS, responses=AUDIO_RESPONSE,
                  summary="The prompt's voice in another language, no transcript (raw PCM s16le)")
async def inference_cross_lingual(
    request: Request, tts_text: TtsText = "", prompt_wav: PromptWav = None, spk_id: SpkId = None,
) -> StreamingResponse:
    return await _prompted(request, "cross_lingual", "/inference_cross_lingual", text=tts_text, voice=spk_id,
                           upload=prompt_wav)


@router.api_route("/inference_instruct", methods=METHODS, responses=AUDIO_RESPONSE,
                  summary="A built-in voice following instructions, CosyVoice v1 -Instruct models (raw PCM s16le)")
async def inference_instruct(
    request: Request,
    tts_text: TtsText = "",
    spk_id: Annotated[str | None, Form(description="built-in voice from /list_voices")] = None,
    instruct_text: InstructText = "",
) -> StreamingResponse:
    return await _prompted(request, "instruct", "/inference_instruct", text=tts_text, voice=spk_id, upload=None,
                           instruct_text=instruct_text)


@router.api_route("/inference_instruct2", methods=METHODS, responses=AUDIO_RESPONSE,
                  summary="The prompt's voice following instructions, CosyVoice2/3 (raw PCM s16le)")
async def inference_instruct2(
    request: Request, tts_text: TtsText = "", instruct_text: InstructText = "", prompt_wav: PromptWav = None,
    spk_id: SpkId = None,
) -> StreamingResponse:
    return await _prompted(request, "instruct2", "/inference_instruct2", text=tts_text, voice=spk_id,
                           upload=prompt_wav, instruct_text=instruct_text)
