"""Upstream CosyVoice's own gRPC client, unchanged, in sft mode on the embedded voice (its 22050 Hz is Piper's)."""

from __future__ import annotations

import pytest

from tests.server.grpc.grpc_calls import speech
from tests.server.grpc.upstream_client import read_client_wav, run_upstream_client
from tests.support import assert_speech
from ttspilot.engines.cosyvoice.upstream import find_trees
from ttspilot.server.grpc.protos import speech_pb2 as sp

pytestmark = [pytest.mark.integration, pytest.mark.cosyvoice, pytest.mark.slow]

TEXT = "Hello from upstream's own gRPC client."


@pytest.mark.skipif(not find_trees(), reason="no CosyVoice tree: no ../shared/upstream/CosyVoice-* and "
                    "TTSPILOT_COSYVOICE_TREES unset")
def test_upstream_client_sft_writes_a_wav_of_our_speech(grpc_server, channel, cosyvoice_python, tmp_path):
    voice = speech(channel).ListVoices(sp.ListVoicesRequest(), timeout=10).default_voice
    wav = run_upstream_client(cosyvoice_python, find_trees()[-1], grpc_server.target, tmp_path,
                              "--mode", "sft", "--spk_id", voice, "--tts_text", TEXT)
    audio, rate = read_client_wav(wav)
    assert rate == 22050
    assert_speech(audio, rate, TEXT)
    served = [r for r in grpc_server.performance()["stats"]["recent"] if r["route"] == "/cosyvoice.CosyVoice/Inference"]
    assert served[-1]["outcome"] == "ok"
    assert served[-1]["audio_s"] == pytest.approx(len(audio) / rate, abs=0.001)  # every sample we sent, no more
