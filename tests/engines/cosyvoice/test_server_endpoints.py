"""The server's CosyVoice endpoints over loopback: prompt uploads, registered voices, upstream's API family.

One server per upstream tree, on a tiny v2 model written once for the module; the server runs in
the CosyVoice environment. The audio is noise: the checks are plumbing (raw PCM at the model's
rate, a plausible length, finite and audible samples, the right 4xx, temporary files removed).
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import openai
import pytest
import soundfile

from tests.engines.cosyvoice.tiny_models import write_tiny
from tests.server.grpc.upstream_client import read_client_wav, run_upstream_client
from tests.support import RunningServer, free_port, start_server, stop_server
from ttspilot.engines.cosyvoice.tiny import MODELS
from ttspilot.engines.cosyvoice.upstream import find_trees
from ttspilot.server.grpc.protos import cosyvoice_pb2 as cv
from ttspilot.server.grpc.protos import cosyvoice_pb2_grpc

pytestmark = [pytest.mark.integration, pytest.mark.cosyvoice, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[3]
MODEL = MODELS[2]
RATE = MODEL.sample_rate
TEXT = "Hello world, this is a short test."
PROMPT_TEXT = "A short prompt for the cloned voice."
# Several segments, so a stream is still running after its first chunk arrives.
LONG = " ".join(f"Sentence number {n} of a reading long enough to need several model calls." for n in range(4))


def trees() -> list:
    found = find_trees()
    if not found:
        return [pytest.param(None, marks=pytest.mark.skip(
            reason="no CosyVoice tree: no ../shared/upstream/CosyVoice-* and TTSPILOT_COSYVOICE_TREES unset"))]
    return [pytest.param(tree, id=tree.name) for tree in found]


class Served:
    def __init__(self, server: RunningServer, uploads: Path, tree: Path, grpc_target: str):
        self.url = server.url
        self.uploads = uploads
        self.tree = tree
        self.grpc_target = grpc_target


@pytest.fixture(scope="module", params=trees())
def cosy(request: pytest.FixtureRequest, cosyvoice_python: Path, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Served]:
    tree: Path = request.param
    folder = tmp_path_factory.mktemp(f"cosy-{tree.name}")
    model_dir, uploads = folder / "tiny-v2", folder / "uploads"
    write_tiny(cosyvoice_python, tree, 2, model_dir)
    grpc_port = free_port()
    server = start_server(
        ["--model_dir", str(model_dir), "--cosyvoice_root", str(tree), "--upload_dir", str(uploads),
         "--grpc_port", str(grpc_port)],
        folder / "server.log", env={"PYTHONPATH": str(REPO_ROOT)}, timeout=180, python=cosyvoice_python,
    )
    yield Served(server, uploads, tree, f"127.0.0.1:{grpc_port}")
    stop_server(server)


def recording(seconds: float = 2.0, rate: int = 22050, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    noise = np.random.default_rng(1).uniform(-0.3, 0.3, int(seconds * rate)).astype(np.float32)
    soundfile.write(buffer, noise, rate, format=fmt)
    return buffer.getvalue()


def upload(data: bytes | None = None) -> dict:
    """As upstream's client sends it: field and file name prompt_wav, no audio content type."""
    return {"prompt_wav": ("prompt_wav", recording() if data is None else data, "application/octet-stream")}


def pcm(body: bytes) -> np.ndarray:
    assert body[:4] != b"RIFF" and body[:2] != b'{"' and len(body) % 2 == 0  # not a WAV, not a JSON error
    return np.frombuffer(body, dtype="<i2").astype(np.float32) / 32767


def assert_noise_for(audio: np.ndarray, rate: int, text: str) -> None:
    """Finite, audible, and no longer than the biased end-of-speech lets the tiny model run."""
    assert np.isfinite(audio).all() and float(np.sqrt(np.mean(audio**2))) > 0.001
    max_tokens = 2 * len(text.encode()) + 20
    assert 0.2 <= len(audio) / rate <= max_tokens / MODEL.token_rate, f"{len(audio) / rate:.2f} s"


def leftover(cosy: Served) -> list[str]:
    return sorted(path.name for path in cosy.uploads.glob("*")) if cosy.uploads.exists() else []


def all_removed(cosy: Served) -> bool:
    """The server removes uploads as its request's call returns, just after the client has the last byte."""
    deadline = time.monotonic() + 10
    while leftover(cosy) and time.monotonic() < deadline:
        time.sleep(0.05)
    return leftover(cosy) == []


def test_zero_shot_upload_answers_raw_pcm_at_the_model_rate(cosy):
    with httpx.stream("GET", cosy.url + "/inference_zero_shot", data={"tts_text": TEXT, "prompt_text": PROMPT_TEXT},
                      files=upload(), timeout=120) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["x-sample-rate"] == str(RATE) and response.headers["x-request-id"]
        body = response.read()
    assert_noise_for(pcm(body), RATE, TEXT)
    assert all_removed(cosy)


def test_upload_lives_while_the_stream_runs_and_is_removed_after_it(cosy):
    with httpx.stream("POST", cosy.url + "/inference_cross_lingual", data={"tts_text": LONG}, files=upload(),
                      timeout=180) as response:
        assert response.status_code == 200
        chunks = response.iter_raw()
        first = next(chunks)
        during = leftover(cosy)
        body = first + b"".join(chunks)
    assert len(during) == 1 and during[0].endswith(".wav"), during
    assert len(pcm(body)) / RATE > 1.0
    assert all_removed(cosy)


def test_upload_is_removed_when_the_client_leaves_mid_stream(cosy):
    with httpx.stream("POST", cosy.url + "/tts/zero_shot", data={"text": LONG, "prompt_text": PROMPT_TEXT},
                      files=upload(), timeout=180) as response:
        assert response.status_code == 200 and response.headers["x-sample-rate"] == "16000"
        chunks = response.iter_raw()  # held: a dropped iterator closes the response, leaving at once
        next(chunks)
        assert len(leftover(cosy)) == 1
    assert all_removed(cosy)
    # The abandoned stream's LLM thread must not spoil the next stream (upstream shares the LLM);
    # /tts/stream takes a prompt too.
    with httpx.stream("POST", cosy.url + "/tts/stream", data={"text": TEXT, "prompt_text": PROMPT_TEXT},
                      files=upload(), timeout=60) as response:
        assert response.status_code == 200
        assert_noise_for(pcm(response.read()), 16000, TEXT)
    assert all_removed(cosy)


BAD_UPLOADS = [
    (recording(2.0, 8000), "sampled at 8000 Hz"),
    (recording(0.5), "0.50 s long"),
    (recording(31.0, 16000, "FLAC"), "longer than 30 s"),
    (b"this is not audio at all", "not a recording this server can read"),
    (b"", "prompt_wav is empty"),
]


@pytest.mark.parametrize(("data", "why"), BAD_UPLOADS, ids=["8kHz", "short", "long", "not-audio", "empty"])
def test_bad_prompt_recordings_are_400_and_leave_no_file(cosy, data, why):
    response = httpx.post(cosy.url + "/inference_zero_shot", data={"tts_text": TEXT, "prompt_text": PROMPT_TEXT},
                          files=upload(data), timeout=60)
    assert response.status_code == 400, response.text
    assert why in response.json()["message"] and "prompt_wav" in response.json()["message"]
    assert leftover(cosy) == []  # never written


def test_zero_shot_without_a_prompt_or_registered_voice_is_400(cosy):
    response = httpx.post(cosy.url + "/inference_zero_shot", data={"tts_text": TEXT, "prompt_text": PROMPT_TEXT},
                          timeout=60)
    assert response.status_code == 400
    assert "upload prompt_wav or name a registered voice in spk_id" in response.json()["message"]
    missing = httpx.post(cosy.url + "/voices", data={"id": "nobody", "prompt_text": PROMPT_TEXT}, timeout=60)
    assert missing.status_code == 400 and "prompt_wav" in missing.json()["message"]


def test_registered_voice_speaks_through_openai_then_is_deleted(cosy):
    created = httpx.post(cosy.url + "/voices", data={"id": "alice", "prompt_text": PROMPT_TEXT}, files=upload(),
                         timeout=120)
    assert created.status_code == 201, created.text
    assert created.json() == {"id": "alice", "name": "alice", "language": "multilingual", "engine": "cosyvoice",
                              "kind": "registered"}
    listed = {v["id"]: v["kind"] for v in httpx.get(cosy.url + "/v1/audio/voices").json()["voices"]}
    assert listed == {"tiny": "builtin", "alice": "registered"}

    client = openai.OpenAI(base_url=cosy.url + "/v1", api_key="not-needed")
    speech = client.audio.speech.create(model="tts-1", voice="alice", input=TEXT, response_format="pcm")
    assert_noise_for(pcm(speech.content), 24000, TEXT)
    instructed = client.audio.speech.with_raw_response.create(
        model="tts-1", voice="alice", input=TEXT, response_format="pcm", instructions="Speak happily.")
    assert "warning" not in instructed.headers  # followed: CosyVoice2's instruct2 with the registered voice
    assert_noise_for(pcm(instructed.content), 24000, TEXT)
    deploy = httpx.post(cosy.url + "/tts/zero_shot", data={"text": TEXT, "speaker": "alice"}, timeout=120)
    assert deploy.status_code == 200
    assert_noise_for(pcm(deploy.content), 16000, TEXT)

    assert httpx.post(cosy.url + "/voices", data={"id": "alice", "prompt_text": PROMPT_TEXT}, files=upload(),
                      timeout=60).status_code == 409
    assert httpx.delete(cosy.url + "/voices/alice").status_code == 204
    assert httpx.delete(cosy.url + "/voices/alice").status_code == 404
    gone = httpx.post(cosy.url + "/v1/audio/speech", json={"model": "tts-1", "input": TEXT, "voice": "alice"})
    assert gone.status_code == 404
    assert all_removed(cosy)


def test_voice_ids_and_built_in_voices_are_guarded(cosy):
    invalid = httpx.post(cosy.url + "/voices", data={"id": "../escape", "prompt_text": PROMPT_TEXT},
                         files=upload(), timeout=60)
    assert invalid.status_code == 400 and "voice id '../escape' is not valid" in invalid.json()["message"]
    taken = httpx.post(cosy.url + "/voices", data={"id": "tiny", "prompt_text": PROMPT_TEXT}, files=upload(),
                       timeout=60)
    assert taken.status_code == 409 and "already exists (built-in)" in taken.json()["message"]
    builtin = httpx.delete(cosy.url + "/voices/tiny")
    assert builtin.status_code == 409 and "built into the model" in builtin.json()["message"]


def test_upstreams_get_with_a_form_body_gets_raw_pcm(cosy):
    response = httpx.request("GET", cosy.url + "/inference_sft", data={"tts_text": TEXT, "spk_id": "tiny"},
                             timeout=120)
    assert response.status_code == 200 and response.headers["content-type"] == "audio/pcm"
    assert response.headers["x-sample-rate"] == str(RATE)
    assert_noise_for(pcm(response.content), RATE, TEXT)


def test_v1_instruct_text_needs_a_registered_voice_on_v2(cosy):
    response = httpx.post(cosy.url + "/v1/tts", json={"text": TEXT, "instruct_text": "Whisper."}, timeout=60)
    assert response.status_code == 400 and "registered voice in speaker" in response.json()["message"]


def test_upstream_grpc_client_zero_shot_writes_a_wav(cosy, cosyvoice_python, tmp_path):
    """Upstream's own runtime/python/grpc/client.py, unchanged: it sends the prompt as 16 kHz int16 PCM and saves
    what it gets at its hard-coded 22050 Hz (the tiny model's rate is 24000: the wav plays slow, as upstream's would)."""
    prompt = tmp_path / "prompt.wav"
    prompt.write_bytes(recording())
    wav = run_upstream_client(cosyvoice_python, cosy.tree, cosy.grpc_target, tmp_path, "--mode", "zero_shot",
                              "--tts_text", TEXT, "--prompt_text", PROMPT_TEXT, "--prompt_wav", str(prompt))
    audio, rate = read_client_wav(wav)
    assert rate == 22050
    assert_noise_for(audio, RATE, TEXT)  # judged at the rate it was made
    assert all_removed(cosy)


@pytest.mark.parametrize(("prompt_audio", "why"), [
    (b"\xff\xfe\xfd", "odd number"),  # not 16-bit PCM (and not UTF-8 either)
    (b"\x00\x01" * 8000, "0.50 s long"),
    (b"", "prompt_audio is empty"),
], ids=["odd", "short", "empty"])
def test_bad_grpc_prompt_audio_is_invalid_argument_and_leaves_no_file(cosy, prompt_audio, why):
    request = cv.Request(zero_shot_request=cv.zeroshotRequest(tts_text=TEXT, prompt_text=PROMPT_TEXT,
                                                              prompt_audio=prompt_audio))
    with grpc.insecure_channel(cosy.grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            list(cosyvoice_pb2_grpc.CosyVoiceStub(channel).Inference(request, timeout=60))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert why in refused.value.details() and "zero_shot_request.prompt_audio" in refused.value.details()
    assert leftover(cosy) == []
