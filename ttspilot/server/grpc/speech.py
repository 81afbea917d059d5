"""ttspilot's own gRPC service, `ttspilot.v1.Speech`: what HTTP clients get, over gRPC.

Synthesize takes the fields `/inference_sft` and `/v1/tts` take (text, voice, format, sample rate,
speed, stream) through the same `make_job`, and answers numbered audio chunks, then a summary with
the request's timings (RTF, processing time, audio duration, first audio, request id).
"""

from __future__ import annotations

import grpc

from ttspilot.server.grpc.audio import send_audio
from ttspilot.server.grpc.protos import speech_pb2, speech_pb2_grpc
from ttspilot.server.grpc.status import answering_errors
from ttspilot.server.jobs import make_job
from ttspilot.server.state import ServerState

ROUTE = "/ttspilot.v1.Speech/Synthesize"
DEFAULT_FORMAT = "pcm"  # raw samples: what a gRPC client playing audio as it arrives wants


class SpeechService(speech_pb2_grpc.SpeechServicer):
    def __init__(self, state: ServerState):
        self.state = state

    async def Synthesize(self, request: speech_pb2.SynthesizeRequest, context: grpc.aio.ServicerContext) -> None:
        async with answering_errors(context):
            job = make_job(
                self.state.engine, self.state.settings, text=request.text, voice=request.voice or None,
                speed=request.speed if request.HasField("speed") else 1.0,
                sample_rate=request.sample_rate if request.HasField("sample_rate") else None,
                audio_format=request.format or DEFAULT_FORMAT, stream=request.stream,
            )

            def chunk(sequence: int, data: bytes) -> speech_pb2.SynthesizeResponse:
                return speech_pb2.SynthesizeResponse(
                    audio=speech_pb2.AudioChunk(sequence=sequence, data=data, sample_rate=job.sample_rate))

            timing, chunks = await send_audio(self.state, job, context, ROUTE, chunk)
            await context.write(speech_pb2.SynthesizeResponse(summary=speech_pb2.Summary(
                request_id=timing.request_id, sample_rate=job.sample_rate, chunks=chunks,
                audio_seconds=timing.audio_seconds, processing_seconds=timing.processing_seconds,
                rtf=timing.rtf or 0.0, time_to_first_audio_seconds=timing.time_to_first_audio or 0.0,
            )))

    async def ListVoices(self, request: speech_pb2.ListVoicesRequest, context: grpc.aio.ServicerContext
                         ) -> speech_pb2.ListVoicesResponse:
        engine = self.state.engine
        voices = [speech_pb2.Voice(id=v.id, name=v.name, language=v.language, engine=v.engine, kind=v.kind)
                  for v in engine.voices()]
        return speech_pb2.ListVoicesResponse(default_voice=engine.default_voice, voices=voices)
