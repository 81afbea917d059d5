"""Upstream CosyVoice's gRPC service, `cosyvoice.CosyVoice/Inference`, on ttspilot's pipeline.

A client of upstream's runtime (runtime/python/grpc) works unchanged: one request naming one mode,
a stream of `Response{tts_audio}` with raw 16-bit PCM at the model's rate, a message per piece as it
is made (as the HTTP upstream family sends it). Prompt audio arrives as upstream's client sends it,
raw 16 kHz 16-bit PCM; it is checked as an upload is and kept as a temporary wav while the call runs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc

from ttspilot.engines.base import Mode, Style
from ttspilot.server.errors import BadRequest
from ttspilot.server.grpc.audio import send_audio
from ttspilot.server.grpc.protos import cosyvoice_pb2, cosyvoice_pb2_grpc
from ttspilot.server.grpc.status import answering_errors
from ttspilot.server.jobs import make_job
from ttspilot.server.pipeline import SynthesisJob
from ttspilot.server.prompt_upload import decode_pcm_prompt, write_prompt
from ttspilot.server.state import ServerState
from ttspilot.server.styles import instruction_style, prompt_style

ROUTE = "/cosyvoice.CosyVoice/Inference"
PROMPT_RATE = 16_000  # upstream's client resamples the prompt to 16 kHz before sending it
PAYLOADS = "sft_request, zero_shot_request, cross_lingual_request or instruct_request"


class CosyVoiceService(cosyvoice_pb2_grpc.CosyVoiceServicer):
    def __init__(self, state: ServerState):
        self.state = state

    async def Inference(self, request: cosyvoice_pb2.Request, context: grpc.aio.ServicerContext) -> None:
        files: list[Path] = []  # the prompt's temporary wav, removed when the call ends however it ends
        try:
            async with answering_errors(context):
                job = await self._job(request, files)
                await send_audio(self.state, job, context, ROUTE,
                                 lambda _, data: cosyvoice_pb2.Response(tts_audio=data))
        finally:
            for path in files:
                path.unlink(missing_ok=True)

    async def _job(self, request: cosyvoice_pb2.Request, files: list[Path]) -> SynthesisJob:
        engine = self.state.engine
        payload = request.WhichOneof("RequestPayload")
        if payload is None:
            raise BadRequest(f"the request names no mode: set one of {PAYLOADS}")
        fields = getattr(request, payload)
        voice: str | None = None
        if payload == "sft_request":
            style, voice = Style(), fields.spk_id
        elif payload == "instruct_request":
            voice = fields.spk_id or None
            style = instruction_style(engine, voice, fields.instruct_text, voice_field="spk_id")
        else:
            mode: Mode = "zero_shot" if payload == "zero_shot_request" else "cross_lingual"
            engine.capabilities.require(mode, engine.name)  # before the prompt is read, as for HTTP
            wav = await asyncio.to_thread(self._prompt_file, fields.prompt_audio, f"{payload}.prompt_audio", files)
            style = prompt_style(engine, mode, voice=None, prompt_wav=wav,
                                 prompt_text=getattr(fields, "prompt_text", ""))
        return make_job(engine, self.state.settings, text=fields.tts_text, voice=voice, sample_rate=engine.sample_rate,
                        audio_format="pcm", stream=True, style=style, text_field="tts_text")

    def _prompt_file(self, data: bytes, field: str, files: list[Path]) -> Path:
        mono = decode_pcm_prompt(data, PROMPT_RATE, field)
        return write_prompt(mono, PROMPT_RATE, self.state.settings.upload_dir, files)
