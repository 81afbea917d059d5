"""gRPC with an API key and a short --request_timeout: the same rules as HTTP, answered as gRPC statuses."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from tests.server.grpc.grpc_calls import GrpcServed, finished_request, pcm, refusal, speech, start_grpc_server, upstream
from tests.support import assert_speech, stop_server
from ttspilot.server.grpc.protos import cosyvoice_pb2 as cv
from ttspilot.server.grpc.protos import speech_pb2 as sp

pytestmark = pytest.mark.integration

KEY = "grpc-test-key"
SHORT = "Hello with a key."
LONG = " ".join(f"Sentence {i} of a long reading that keeps one worker busy for a good while." for i in range(24))


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcServed]:
    served = start_grpc_server(["--api_key", KEY, "--request_timeout", "1.5"],
                               tmp_path_factory.mktemp("grpc-keyed") / "server.log", headers={"X-API-Key": KEY})
    yield served
    stop_server(served.server)


@pytest.fixture(scope="module")
def keyed_channel(keyed: GrpcServed) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(keyed.target) as opened:
        yield opened


@pytest.mark.parametrize("metadata", [(), (("x-api-key", "wrong"),), (("authorization", "Bearer wrong"),)],
                         ids=["none", "wrong-x-api-key", "wrong-bearer"])
def test_every_method_but_health_needs_the_key(keyed_channel, metadata):
    calls = [
        speech(keyed_channel).Synthesize(sp.SynthesizeRequest(text=SHORT), metadata=metadata, timeout=10),
        upstream(keyed_channel).Inference(cv.Request(sft_request=cv.sftRequest(tts_text=SHORT)), metadata=metadata,
                                          timeout=10),
    ]
    for call in calls:
        error = refusal(call)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED and "API key" in error.details()
    with pytest.raises(grpc.RpcError) as voices:
        speech(keyed_channel).ListVoices(sp.ListVoicesRequest(), metadata=metadata, timeout=10)
    assert voices.value.code() == grpc.StatusCode.UNAUTHENTICATED
    if not metadata:
        with pytest.raises(grpc.RpcError) as listed:
            ProtoReflectionDescriptorDatabase(keyed_channel).get_services()
        assert listed.value.code() == grpc.StatusCode.UNAUTHENTICATED
    health = health_pb2_grpc.HealthStub(keyed_channel).Check(health_pb2.HealthCheckRequest(), metadata=metadata,
                                                             timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("metadata", [(("x-api-key", KEY),), (("authorization", f"Bearer {KEY}"),)],
                         ids=["x-api-key", "bearer"])
def test_the_key_in_either_metadata_is_accepted(keyed_channel, metadata):
    assert speech(keyed_channel).ListVoices(sp.ListVoicesRequest(), metadata=metadata, timeout=10).voices
    call = upstream(keyed_channel).Inference(cv.Request(sft_request=cv.sftRequest(tts_text=SHORT)), metadata=metadata,
                                             timeout=60)
    assert_speech(pcm(b"".join(response.tts_audio for response in call)), 22050, SHORT)


def test_request_timeout_is_deadline_exceeded_and_the_server_recovers(keyed, keyed_channel):
    key = (("x-api-key", KEY),)
    error = refusal(speech(keyed_channel).Synthesize(
        sp.SynthesizeRequest(text=LONG), metadata=(*key, ("x-request-id", "grpc-timeout-1")), timeout=60))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED and "longer than 1.5 s" in error.details()
    assert finished_request(keyed, "grpc-timeout-1")["outcome"] == "timeout"
    messages = list(speech(keyed_channel).Synthesize(sp.SynthesizeRequest(text=SHORT), metadata=key, timeout=60))
    assert messages[-1].summary.audio_seconds > 0
