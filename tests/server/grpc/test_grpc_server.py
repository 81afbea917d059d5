"""gRPC on a real Piper server over loopback: every method, order, limits, hostile input, metrics.

One server for the package (tests/server/grpc/conftest.py), at --max_queue 2 and 64 KiB messages.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import numpy as np
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from tests.server.grpc.grpc_calls import finished_request, pcm, refusal, speech, upstream, wait_idle
from tests.support import assert_speech, decode_wav, start_server
from ttspilot.server.grpc.protos import cosyvoice_pb2 as cv
from ttspilot.server.grpc.protos import speech_pb2 as sp

pytestmark = pytest.mark.integration

RATE = 22050  # the embedded voice's
# Two segments when streamed (the first is cut at its clause), so a stream has several chunks to order.
TEXT = "Hello over gRPC, in pieces as they are made. This second sentence follows the first one closely."
SHORT = "A short answer."
LONG = " ".join(f"Sentence {i} of a long reading that keeps one worker busy for a good while." for i in range(12))
SERVING = health_pb2.HealthCheckResponse.SERVING


def prompt_audio(seconds: float = 2.0) -> bytes:
    """What upstream's client sends: 16 kHz mono int16 PCM."""
    noise = np.random.default_rng(3).uniform(-0.3, 0.3, int(seconds * 16000))
    return (noise * 32767).astype("<i2").tobytes()


def test_reflection_lists_both_services_and_health(channel):
    database = ProtoReflectionDescriptorDatabase(channel)
    assert {"cosyvoice.CosyVoice", "ttspilot.v1.Speech", "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection"} <= set(database.get_services())
    pool = DescriptorPool(database)  # what grpcurl describe reads
    inference = pool.FindServiceByName("cosyvoice.CosyVoice").FindMethodByName("Inference")
    assert (inference.input_type.full_name, inference.output_type.full_name) == ("cosyvoice.Request", "cosyvoice.Response")
    assert pool.FindMessageTypeByName("cosyvoice.zeroshotRequest").fields_by_name["prompt_audio"].number == 3


def test_health_is_serving_for_the_server_and_each_service(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "cosyvoice.CosyVoice", "ttspilot.v1.Speech"):
        assert health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status == SERVING
    with pytest.raises(grpc.RpcError) as unknown:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_speech_stream_arrives_in_order_then_a_summary(grpc_server, channel):
    call = speech(channel).Synthesize(sp.SynthesizeRequest(text=TEXT, stream=True),
                                      metadata=(("x-request-id", "grpc-order-1"),), timeout=60)
    messages = list(call)
    assert [m.WhichOneof("payload") for m in messages] == ["audio"] * (len(messages) - 1) + ["summary"]
    chunks, summary = [m.audio for m in messages[:-1]], messages[-1].summary
    assert len(chunks) >= 2
    assert [chunk.sequence for chunk in chunks] == list(range(len(chunks)))
    assert {chunk.sample_rate for chunk in chunks} == {RATE}
    audio = pcm(b"".join(chunk.data for chunk in chunks))
    assert_speech(audio, RATE, TEXT)
    assert (summary.request_id, summary.sample_rate, summary.chunks) == ("grpc-order-1", RATE, len(chunks))
    assert summary.audio_seconds == pytest.approx(len(audio) / RATE, rel=0.01)
    assert 0 < summary.time_to_first_audio_seconds <= summary.processing_seconds
    assert summary.rtf == pytest.approx(summary.processing_seconds / summary.audio_seconds, rel=0.01)
    metadata = dict(call.initial_metadata())
    assert (metadata["x-request-id"], metadata["x-sample-rate"]) == ("grpc-order-1", str(RATE))
    record = finished_request(grpc_server, "grpc-order-1")
    assert (record["route"], record["outcome"], record["stream"]) == ("/ttspilot.v1.Speech/Synthesize", "ok", True)


def test_speech_whole_wav_at_another_rate_and_speed(channel):
    messages = list(speech(channel).Synthesize(
        sp.SynthesizeRequest(text=TEXT, format="wav", sample_rate=16000, speed=1.25), timeout=60))
    audio, rate = decode_wav(b"".join(m.audio.data for m in messages if m.HasField("audio")))
    assert rate == 16000 and messages[-1].summary.sample_rate == 16000
    assert_speech(audio, rate, TEXT)


def test_list_voices_names_the_default(channel):
    voices = speech(channel).ListVoices(sp.ListVoicesRequest(), timeout=10)
    assert voices.default_voice in [voice.id for voice in voices.voices]
    assert {voice.engine for voice in voices.voices} == {"piper"}


def test_upstream_sft_streams_pcm_at_the_models_rate(channel):
    default = speech(channel).ListVoices(sp.ListVoicesRequest(), timeout=10).default_voice
    for spk_id in ("", default):
        call = upstream(channel).Inference(cv.Request(sft_request=cv.sftRequest(spk_id=spk_id, tts_text=TEXT)),
                                           timeout=60)
        audio = pcm(b"".join(response.tts_audio for response in call))
        assert_speech(audio, RATE, TEXT)


@pytest.mark.parametrize("request_", [
    cv.Request(zero_shot_request=cv.zeroshotRequest(tts_text=TEXT, prompt_text="Words.", prompt_audio=prompt_audio())),
    cv.Request(cross_lingual_request=cv.crosslingualRequest(tts_text=TEXT, prompt_audio=prompt_audio())),
    cv.Request(instruct_request=cv.instructRequest(tts_text=TEXT, instruct_text="Speak slowly.")),
], ids=["zero_shot", "cross_lingual", "instruct"])
def test_modes_piper_cannot_do_are_invalid_argument_naming_the_engine(channel, request_):
    error = refusal(upstream(channel).Inference(request_, timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not supported by this engine" in error.details() and "(piper)" in error.details()


def test_a_request_without_a_mode_is_invalid_argument(channel):
    error = refusal(upstream(channel).Inference(cv.Request(), timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "sft_request" in error.details()


TRAVERSAL = "../../../../etc/passwd"
LONG_INPUT = "word " * 4000  # 20,000 characters


@pytest.mark.parametrize(("service", "request_", "code", "says"), [
    ("speech", sp.SynthesizeRequest(text=""), "INVALID_ARGUMENT", "text is empty"),
    ("speech", sp.SynthesizeRequest(text="?!  ..."), "INVALID_ARGUMENT", "nothing to speak"),
    ("speech", sp.SynthesizeRequest(text=LONG_INPUT), "INVALID_ARGUMENT", "at most 10000"),
    ("speech", sp.SynthesizeRequest(text=SHORT, voice=TRAVERSAL), "NOT_FOUND", "not found"),
    ("speech", sp.SynthesizeRequest(text=SHORT, speed=5), "INVALID_ARGUMENT", "speed must be between"),
    ("speech", sp.SynthesizeRequest(text=SHORT, sample_rate=12345), "INVALID_ARGUMENT", "sample_rate 12345"),
    ("speech", sp.SynthesizeRequest(text=SHORT, format="exe"), "INVALID_ARGUMENT", "format 'exe'"),
    ("upstream", cv.Request(sft_request=cv.sftRequest(tts_text="")), "INVALID_ARGUMENT", "tts_text is empty"),
    ("upstream", cv.Request(sft_request=cv.sftRequest(tts_text=LONG_INPUT)), "INVALID_ARGUMENT", "tts_text is 20000"),
    ("upstream", cv.Request(sft_request=cv.sftRequest(tts_text=SHORT, spk_id=TRAVERSAL)), "NOT_FOUND", "not found"),
    # invalid UTF-8 in a bytes field is just bytes: on Piper the mode is refused before the prompt is read
    ("upstream", cv.Request(zero_shot_request=cv.zeroshotRequest(tts_text=SHORT, prompt_text="x",
                                                                 prompt_audio=b"\xff\xfe\xfd")),
     "INVALID_ARGUMENT", "(piper)"),
], ids=lambda value: value if isinstance(value, str) and len(value) < 20 else None)
def test_hostile_input_gets_a_status_that_says_why(channel, service, request_, code, says):
    stub = speech(channel).Synthesize if service == "speech" else upstream(channel).Inference
    error = refusal(stub(request_, timeout=30))
    assert (error.code().name, says in error.details()) == (code, True), error.details()


@pytest.mark.parametrize(("method", "raw"), [
    ("/cosyvoice.CosyVoice/Inference", b"\x0a\x04\x12\x02\xff\xfe"),  # sft_request.tts_text = b"\xff\xfe"
    ("/ttspilot.v1.Speech/Synthesize", b"\x0a\x02\xff\xfe"),  # text = b"\xff\xfe"
    ("/ttspilot.v1.Speech/Synthesize", b"\xff\xff\xff"),  # not a message at all
])
def test_a_message_that_does_not_parse_is_invalid_argument(channel, method, raw):
    error = refusal(channel.unary_stream(method)(raw, timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "not a valid message" in error.details()


def test_a_message_over_the_size_limit_is_refused(channel):
    error = refusal(speech(channel).Synthesize(sp.SynthesizeRequest(text="a" * 70_000), timeout=30))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_cancelled_stream_stops_its_remaining_segments(grpc_server, channel):
    call = speech(channel).Synthesize(sp.SynthesizeRequest(text=LONG, stream=True),
                                      metadata=(("x-request-id", "grpc-cancel-1"),), timeout=60)
    assert next(call).HasField("audio")
    call.cancel()
    record = finished_request(grpc_server, "grpc-cancel-1")
    assert record["outcome"] == "cancelled" and record["segments"] >= 10
    assert record["audio_s"] < 0.4 * 0.03 * len(LONG)  # a few segments at most of a reading of 27 s or more
    wait_idle(grpc_server, timeout=10)


def test_the_clients_deadline_ends_the_call_and_its_work(grpc_server, channel):
    error = refusal(speech(channel).Synthesize(sp.SynthesizeRequest(text=LONG),
                                               metadata=(("x-request-id", "grpc-deadline-1"),), timeout=0.5))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    record = finished_request(grpc_server, "grpc-deadline-1")
    assert record["outcome"] == "cancelled" and record["processing_s"] < 5
    wait_idle(grpc_server, timeout=10)


def test_fifty_calls_at_max_queue_2_end_ok_or_resource_exhausted_and_health_answers(grpc_server, channel):
    checks: list[tuple[str, float]] = []  # (status name or error code, seconds)
    stop = threading.Event()

    def watch_health() -> None:
        with grpc.insecure_channel(grpc_server.target) as probe:
            health = health_pb2_grpc.HealthStub(probe)
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    status = health_pb2.HealthCheckResponse.ServingStatus.Name(
                        health.Check(health_pb2.HealthCheckRequest(), timeout=5).status)
                except grpc.RpcError as error:
                    status = error.code().name
                checks.append((status, time.perf_counter() - started))
                time.sleep(0.05)

    def one(number: int) -> tuple[grpc.StatusCode, bytes, grpc.RpcError | None]:
        call = (speech(channel).Synthesize(sp.SynthesizeRequest(text=SHORT, stream=True), timeout=60) if number % 2
                else upstream(channel).Inference(cv.Request(sft_request=cv.sftRequest(tts_text=SHORT)), timeout=60))
        try:
            data = b"".join(m.audio.data if number % 2 else m.tts_audio for m in call)
        except grpc.RpcError as error:
            return error.code(), b"", error
        return grpc.StatusCode.OK, data, None

    watcher = threading.Thread(target=watch_health)
    watcher.start()
    try:
        with ThreadPoolExecutor(50) as pool:
            results = list(pool.map(one, range(50)))
    finally:
        stop.set()
        watcher.join()
    codes = [code for code, _, _ in results]
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert codes.count(grpc.StatusCode.OK) >= 2 and codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 1
    busy = next(error for _, _, error in results if error is not None)
    assert "busy" in busy.details() and ("retry-after", "1") in busy.trailing_metadata()
    for code, data, _ in results:
        if code == grpc.StatusCode.OK:
            assert_speech(pcm(data), RATE, SHORT)
    assert checks and {status for status, _ in checks} == {"SERVING"}
    assert max(seconds for _, seconds in checks) < 2.0
    wait_idle(grpc_server)


def test_grpc_calls_show_on_metrics_and_performance_info(grpc_server, channel):
    list(speech(channel).Synthesize(sp.SynthesizeRequest(text=SHORT), timeout=60))
    list(upstream(channel).Inference(cv.Request(sft_request=cv.sftRequest(tts_text=SHORT)), timeout=60))
    refusal(speech(channel).Synthesize(sp.SynthesizeRequest(text=""), timeout=30))
    metrics = httpx.get(grpc_server.url + "/metrics", timeout=10).text
    for method, code in (("/ttspilot.v1.Speech/Synthesize", "OK"), ("/cosyvoice.CosyVoice/Inference", "OK"),
                         ("/ttspilot.v1.Speech/Synthesize", "INVALID_ARGUMENT")):
        assert re.search(rf'ttspilot_grpc_requests_total\{{code="{code}",method="{method}"\}} [1-9]', metrics), metrics
    assert "ttspilot_http_requests_total" in metrics  # beside HTTP's
    routes = {request["route"] for request in grpc_server.performance()["stats"]["recent"]}
    assert {"/ttspilot.v1.Speech/Synthesize", "/cosyvoice.CosyVoice/Inference"} <= routes


def test_a_taken_grpc_port_stops_the_start_with_one_line(tmp_path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(RuntimeError) as failed:
            start_server(["--grpc_port", str(port)], tmp_path / "server.log", timeout=60)
    assert f"gRPC cannot listen on 127.0.0.1:{port}" in str(failed.value)

