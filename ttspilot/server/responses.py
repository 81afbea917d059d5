"""Shape pipeline output into HTTP responses with the headers docs/architecture.md ("Request path") lists."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from typing import Any

import anyio
import numpy as np
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.types import Send

from ttspilot.encoders import MEDIA_TYPES, StreamEncoder, WholeEncoder
from ttspilot.engines.base import Engine
from ttspilot.server.language import coverage_warning
from ttspilot.server.pipeline import SynthesisJob, SynthesisPipeline, SynthesisTimeout
from ttspilot.server.stats import RequestTiming

log = logging.getLogger(__name__)
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id_from(given: str) -> str:
    """Keep a well-formed client request id (X-Request-ID, gRPC `x-request-id`) so logs line up; otherwise make one."""
    return given if _CLIENT_ID.match(given) else uuid.uuid4().hex


def request_id(request: Request) -> str:
    return request_id_from(request.headers.get("x-request-id", ""))


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


def stream_headers(job: SynthesisJob, timing: RequestTiming) -> dict[str, str]:
    """What a streamed response can say before its audio exists; timings follow on /performance_info."""
    return {"X-Request-ID": timing.request_id, "X-Sample-Rate": str(job.sample_rate)}


def warning_headers(
    engine: Engine, job: SynthesisJob, timing: RequestTiming, notices: Sequence[str] = ()
) -> dict[str, str]:
    """What the client should know about its audio, as a `Warning: 299` header (RFC 7234), each also logged once.

    The audio is still sent: the text's script outside the voice's language, or a field this engine ignores.
    """
    language = next((voice.language for voice in engine.voices() if voice.id == job.voice), None)
    found = [*notices, *filter(None, [language and coverage_warning(job.text, language)])]
    for notice in found:
        log.warning("request %s: %s", timing.request_id, notice)
    return {"Warning": ", ".join(f'299 - "{notice}"' for notice in found)} if found else {}


async def encoded_whole(pipeline: SynthesisPipeline, job: SynthesisJob, timing: RequestTiming) -> bytes:
    """The whole file in the job's format, its sizes known; encoded as audio arrives, so only the encoded file is held."""
    encoder = WholeEncoder(job.audio_format, job.sample_rate)
    async with aclosing(pipeline.audio(job, timing)) as chunks:
        async for chunk in chunks:
            encoder.write(chunk)
    return encoder.finish()


async def whole_response(
    pipeline: SynthesisPipeline, job: SynthesisJob, timing: RequestTiming, headers: dict[str, str] | None = None
) -> Response:
    """All audio in one body, with timing headers."""
    body = await encoded_whole(pipeline, job, timing)
    headers = timing_headers(timing, job.sample_rate) | (headers or {})
    return Response(body, media_type=MEDIA_TYPES[job.audio_format], headers=headers)


async def audio_started(
    pipeline: SynthesisPipeline, job: SynthesisJob, timing: RequestTiming
) -> AsyncGenerator[np.ndarray, None]:
    """The request's audio, once its first chunk exists.

    A stream sends its status and headers with its first bytes, so waiting for the first audio
    keeps a failure before it (a call stuck past --call_timeout, an engine error) an HTTP error
    status: 504, 503, 400. A failure after audio started can only cut the stream (see
    `DeadlineStreamingResponse`). The client hears nothing sooner either way.
    """
    chunks = pipeline.audio(job, timing)
    try:
        first = await anext(chunks, None)
    except BaseException:
        await chunks.aclose()
        raise

    async def started() -> AsyncGenerator[np.ndarray, None]:
        async with aclosing(chunks):
            if first is not None:
                yield first
            async for chunk in chunks:
                yield chunk

    return started()


async def encoded_chunks(audio: AsyncGenerator[np.ndarray, None], job: SynthesisJob) -> AsyncGenerator[bytes, None]:
    """The stream's bytes in the job's format, as each chunk is synthesized."""
    encoder = StreamEncoder(job.audio_format, job.sample_rate)
    if header := encoder.start():
        yield header
    async with aclosing(audio) as chunks:
        async for chunk in chunks:
            if data := encoder.encode(chunk):
                yield data
    if tail := encoder.finish():
        yield tail


class DeadlineStreamingResponse(StreamingResponse):
    """A stream that ends at the request's deadline, so --request_timeout covers sending as well as synthesis.

    A stream cut short (the deadline, or an engine call silent past --call_timeout after audio
    started) is left incomplete: the server closes the connection without the chunked body's end,
    so a client cannot mistake it for the whole audio. A client that stops reading is dropped
    sooner, after --write_timeout, by the connection protocol (`connections.py`).
    """

    def __init__(self, chunks: AsyncGenerator[bytes, None], pipeline: SynthesisPipeline, timing: RequestTiming,
                 **kwargs: Any):
        super().__init__(chunks, **kwargs)
        self.chunks = chunks
        self.pipeline = pipeline
        self.timing = timing

    async def stream_response(self, send: Send) -> None:
        try:
            with anyio.fail_after(self.pipeline.seconds_left(self.timing)):  # asyncio.timeout is 3.11+
                await super().stream_response(send)
        except TimeoutError:
            log.warning("request %s cut after %.1f s: longer than --request_timeout %g s", self.timing.request_id,
                        self.timing.processing_seconds, self.pipeline.settings.request_timeout)
        except SynthesisTimeout as error:
            log.warning("request %s cut after %.1f s: %s", self.timing.request_id, self.timing.processing_seconds,
                        error)
        finally:
            await self.chunks.aclose()  # a stream stopped while sending still frees its slot now


async def streaming_response(
    pipeline: SynthesisPipeline, job: SynthesisJob, timing: RequestTiming, headers: dict[str, str] | None = None
) -> StreamingResponse:
    """Chunks as they are made, headers with the first audio; timings land on /performance_info under the request id."""
    headers = stream_headers(job, timing) | (headers or {})
    body = encoded_chunks(await audio_started(pipeline, job, timing), job)
    return DeadlineStreamingResponse(body, pipeline, timing, media_type=MEDIA_TYPES[job.audio_format], headers=headers)


async def respond(
    pipeline: SynthesisPipeline, job: SynthesisJob, timing: RequestTiming, notices: Sequence[str] = ()
) -> Response:
    """Streamed or whole, as the job asks; `notices` join the Warning header."""
    headers = warning_headers(pipeline.engine, job, timing, notices)
    if job.stream:
        return await streaming_response(pipeline, job, timing, headers)
    return await whole_response(pipeline, job, timing, headers)
