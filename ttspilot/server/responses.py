"""Shape pipeline output into HTTP responses with the headers DESIGN.md section 4 promises."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable

import numpy as np
from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from ttspilot.audio import pcm_bytes, streaming_wav_header, wav_bytes
from ttspilot.server.pipeline import SynthesisJob, SynthesisPipeline
from ttspilot.server.stats import RequestTiming

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

MEDIA_TYPES = {"wav": "audio/wav", "pcm": "audio/pcm"}


def request_id(request: Request) -> str:
    """Keep a well-formed client X-Request-ID so logs line up; otherwise make one."""
    given = request.headers.get("x-request-id", "")
    return given if _CLIENT_ID.match(given) else uuid.uuid4().hex


def timing_headers(timing: RequestTiming, sample_rate: int) -> dict[str, str]:
    ttfa = timing.time_to_first_audio or 0.0
    return {
        "X-Request-ID": timing.request_id,
        "X-Processing-Time": f"{timing.processing_seconds:.4f}",
        "X-Audio-Duration": f"{timing.audio_seconds:.4f}",
        "X-RTF": f"{timing.rtf or 0.0:.4f}",
        "X-Sample-Rate": str(sample_rate),
        "Server-Timing": f"synthesis;dur={timing.processing_seconds * 1000:.1f}, first-audio;dur={ttfa * 1000:.1f}",
    }


def _encoder(audio_format: str, sample_rate: int) -> Callable[[np.ndarray], bytes]:
    if audio_format == "wav":
        return lambda audio: wav_bytes(audio, sample_rate)
    return pcm_bytes


async def whole_response(
    pipeline: SynthesisPipeline, job: SynthesisJob, timing: RequestTiming, audio_format: str
) -> Response:
    """All audio in one body, with timing headers."""
    rate = pipeline.output_rate(job)
    audio = await pipeline.whole(job, timing)
    body = _encoder(audio_format, rate)(audio)
    return Response(body, media_type=MEDIA_TYPES[audio_format], headers=timing_headers(timing, rate))


def streaming_response(
    pipeline: SynthesisPipeline, job: SynthesisJob, timing: RequestTiming, audio_format: str
) -> StreamingResponse:
    """Chunks as they are made: raw PCM, or WAV with an unknown-length header."""
    rate = pipeline.output_rate(job)

    async def body() -> AsyncIterator[bytes]:
        if audio_format == "wav":
            yield streaming_wav_header(rate)
        async for chunk in pipeline.audio(job, timing):
            yield pcm_bytes(chunk)

    headers = {"X-Request-ID": timing.request_id, "X-Sample-Rate": str(rate)}
    return StreamingResponse(body(), media_type=MEDIA_TYPES[audio_format], headers=headers)
