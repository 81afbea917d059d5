"""The optimized-server family: /inference_sft, /list_voices, /warmup_trt, /performance_info.

/inference_sft answers a WAV by default (query parameters on GET, form fields on POST); a GET
with a form body is upstream CosyVoice's client and gets raw PCM at the model's rate (see the route).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import FormData

from ttspilot.canary import CANARY_TEXT, judge_audio
from ttspilot.encoders import AUDIO_RESPONSE
from ttspilot.engines.base import FlagState
from ttspilot.server.errors import ERROR_RESPONSES
from ttspilot.server.jobs import MAX_SPEED, MIN_SPEED, make_job
from ttspilot.server.responses import request_id, respond
from ttspilot.server.routes.upstream import upstream_pcm
from ttspilot.server.state import ServerState

router = APIRouter(tags=["optimized server"], responses=ERROR_RESPONSES)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class SftParams(BaseModel):
    """Fields of /inference_sft, accepted as query parameters (GET) or form fields (POST)."""

    tts_text: str = Field(default="", description="text to speak")
    spk_id: str | None = Field(default=None, description="voice id from /list_voices; empty for the default voice")
    format: Literal["wav", "stream", "pcm"] = Field(
        default="wav", description="wav: WAV file; pcm: raw s16le; stream: raw s16le streamed (same as pcm + stream)"
    )
    speed: float = Field(default=1.0, ge=MIN_SPEED, le=MAX_SPEED)
    stream: bool = Field(default=False, description="send audio as it is made (chunked WAV for wav, raw for pcm)")
    max_text_length: int | None = Field(
        default=None, ge=10, le=1000, description="longest segment handed to the model in one call (characters)"
    )
    enable_smart_split: bool = Field(default=True, description="split at sentence and clause boundaries")
    sample_rate: int | None = Field(default=None, description="output rate; default the server's")


async def _inference_sft(request: Request, params: SftParams) -> Response:
    state: ServerState = request.app.state.ttspilot
    stream = params.stream or params.format == "stream"
    job = make_job(
        state.engine,
        state.settings,
        text=params.tts_text,
        voice=params.spk_id,
        speed=params.speed,
        sample_rate=params.sample_rate,
        audio_format="wav" if params.format == "wav" else "pcm",
        stream=stream,
        segment_max_length=params.max_text_length,
        smart_split=params.enable_smart_split,
        text_field="tts_text",
    )
    timing = state.pipeline.start(job, request_id(request), "/inference_sft")
    return await respond(state.pipeline, job, timing)


async def form_body(request: Request) -> FormData | None:
    """The fields of a form-encoded or multipart body, or None when there is no such body or it is empty."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in FORM_TYPES:
        return None
    form = await request.form()
    return form if len(form) else None


@router.get("/inference_sft", summary="Speak text with a built-in voice", responses=AUDIO_RESPONSE)
async def inference_sft_get(request: Request, params: Annotated[SftParams, Query()]) -> Response:
    """Query parameters answer as documented (WAV unless `format` says otherwise).

    A GET whose body carries form fields (form-urlencoded or multipart) is upstream CosyVoice's own
    client, which sends its form as a GET body and reads the answer as raw PCM s16le at the model's
    rate: it gets what upstream's server sends, raw PCM streamed at the model's rate, with the
    fields read from the body (docs/architecture.md, "Request path").
    """
    if (form := await form_body(request)) is None:
        return await _inference_sft(request, params)
    try:
        fields = SftParams.model_validate(dict(form))
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from None
    return await upstream_pcm(
        request, "/inference_sft", text=fields.tts_text, voice=fields.spk_id, speed=fields.speed,
        stream=fields.stream or fields.format == "stream", segment_max_length=fields.max_text_length,
        smart_split=fields.enable_smart_split,
    )


@router.post("/inference_sft", summary="Speak text with a built-in voice (form fields)", responses=AUDIO_RESPONSE)
async def inference_sft_post(request: Request, params: Annotated[SftParams, Form()]) -> Response:
    return await _inference_sft(request, params)


@router.get("/list_voices", summary="Voices this engine can speak with")
async def list_voices(request: Request) -> dict[str, Any]:
    state: ServerState = request.app.state.ttspilot
    voices = [voice.__dict__ for voice in state.engine.voices()]
    return {"default": state.engine.default_voice, "voices": voices}


@router.post("/warmup_trt", summary="Warm up the active backend; says whether TensorRT is really active")
async def warmup_trt(request: Request) -> JSONResponse:
    """The canary sentence as an ordinary request: admitted (503 when full), timed out, counted in the stats."""
    state: ServerState = request.app.state.ttspilot
    job = make_job(state.engine, state.settings, text=CANARY_TEXT, voice=None)
    timing = state.pipeline.start(job, request_id(request), "/warmup_trt")
    canary = judge_audio(await state.pipeline.whole(job, timing), job.sample_rate)
    trt = state.engine.info().flags.get("load_trt", FlagState(False, "engine does not report TensorRT"))
    body = {
        "warmed_up": canary.passed, "canary": canary.reason, "request_id": timing.request_id,
        "seconds": round(timing.processing_seconds, 3), "audio_seconds": round(timing.audio_seconds, 3),
        "tensorrt_active": trt.active, "tensorrt": asdict(trt),
    }
    return JSONResponse(body, headers={"X-Request-ID": timing.request_id})


@router.get("/performance_info", summary="Effective configuration, hardware and latency percentiles")
async def performance_info(
    request: Request,
    request_id: Annotated[str | None, Query(description="X-Request-ID of a running or recent request")] = None,
) -> dict[str, Any]:
    state: ServerState = request.app.state.ttspilot
    info: dict[str, Any] = {
        "ready": state.ready,
        "effective_config": state.engine.info().as_dict(),
        "capabilities": asdict(state.engine.capabilities),
        "hardware": state.hardware_summary(),
        "pipeline": {
            "workers": state.engine.concurrency,
            "scheduling": state.settings.scheduling,
            "admitted": state.pipeline.admitted,
            "max_admitted": state.pipeline.max_admitted,
            "refused": state.pipeline.refused,
            "memory_reserved_mb": round(state.pipeline.reserved / 2**20, 1),
            "memory_budget_mb": round(state.pipeline.budget / 2**20, 1),
            "call_max_chars": state.settings.call_max_chars,
            "queued_segments": state.pipeline.queued_segments,
            "segment_max_length": state.settings.segment_max_length,
            "first_segment_max": state.settings.first_segment_max,
            "whole_segment_max_length": state.settings.whole_segment_max_length,
        },
        "stats": state.stats.summary(),
        "time": time.time(),
    }
    if state.replica is not None:
        info["replica"] = state.replica
    if request_id is not None:
        found = state.stats.find(request_id)
        info["request"] = found.as_dict() if found else None
    return info
