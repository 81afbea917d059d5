"""The CosyVoice engine behind every API family, through the official code of each tree, over real HTTP.

One server per tree and model version (v3 only where the tree has it), each on a tiny
random-weight folder written by the maker. The audio is noise: these check plumbing (rates,
lengths the tiny model allows, finite audible samples, voices, persistence), never quality.
Upstream's own fastapi client from each tree runs unchanged against our server.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import soundfile
import websockets

from tests.engines.cosyvoice.tiny_models import write_tiny
from tests.support import REPO, RunningServer, decode_wav, start_server, stop_server, write_noise
from ttspilot.engines.cosyvoice.tiny import MODELS, SPEAKER
from ttspilot.engines.cosyvoice.upstream import find_trees, model_versions

pytestmark = [pytest.mark.integration, pytest.mark.cosyvoice, pytest.mark.slow]

TEXT = "Hello world, this is a short test."
PROMPT_TEXT = "This is what the prompt recording says."
MIN_SECONDS, MAX_SECONDS = 0.5, 60.0  # the tiny model's floor (2 tokens per text token) and upstream's ceiling
UPSTREAM_CLIENT_RATE = 22050  # upstream's client.py writes every response at this rate, whatever the model's


def cases() -> list:
    trees = find_trees()
    if not trees:
        return [pytest.param(None, marks=pytest.mark.skip(
            reason="no CosyVoice tree: no ../shared/upstream/CosyVoice-* and TTSPILOT_COSYVOICE_TREES unset"))]
    return [pytest.param((tree, version), id=f"{tree.name}-v{version}")
            for tree in trees for version in model_versions(tree) if version in MODELS]


@dataclass
class Served:
    server: RunningServer
    python: Path
    tree: Path
    version: int
    model_dir: Path
    args: list[str]
    prompt_wav: Path

    @property
    def rate(self) -> int:
        return MODELS[self.version].sample_rate


def assert_noise_speech(audio: np.ndarray, rate: int) -> None:
    """What the tiny model can promise: finite, audible, and a length between its floor and upstream's ceiling."""
    assert audio.size and np.isfinite(audio).all()
    assert float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) > 0.01
    assert MIN_SECONDS <= len(audio) / rate <= MAX_SECONDS, f"{len(audio) / rate:.2f} s"


def pcm(body: bytes) -> np.ndarray:
    return np.frombuffer(body, dtype="<i2").astype(np.float32) / 32767


@pytest.fixture(scope="module", params=cases())
def served(request: pytest.FixtureRequest, cosyvoice_python: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Served]:
    tree, version = request.param
    work = tmp_path_factory.mktemp(f"{tree.name}-v{version}")
    model_dir = write_tiny(cosyvoice_python, tree, version, work / "model")
    args = ["--model_dir", str(model_dir), "--cosyvoice_root", str(tree)]
    server = start_server(args, work / "server.log", env={"PYTHONPATH": str(REPO)}, timeout=240,
                          python=cosyvoice_python)
    served = Served(server, cosyvoice_python, tree, version, model_dir, args, write_noise(work / "prompt.wav"))
    yield served
    stop_server(served.server)


def test_sft_whole_and_streamed(served: Served) -> None:
    whole = httpx.post(served.server.url + "/inference_sft", data={"tts_text": TEXT, "spk_id": SPEAKER}, timeout=120)
    assert whole.status_code == 200, whole.text
    audio, rate = decode_wav(whole.content)
    assert rate == served.rate and whole.headers["x-sample-rate"] == str(served.rate)
    assert_noise_speech(audio, rate)
    info = httpx.get(served.server.url + "/performance_info", timeout=30).json()["effective_config"]
    assert info["engine"] == "cosyvoice" and info["device"] in ("cpu", "cuda")
    assert info["flags"]["fp16"] == {"active": False, "reason": "not requested"}
    params = {"tts_text": TEXT, "spk_id": SPEAKER, "format": "pcm", "stream": "true"}
    with httpx.stream("GET", served.server.url + "/inference_sft", params=params, timeout=120) as streamed:
        assert streamed.status_code == 200
        body = b"".join(streamed.iter_raw())
    assert_noise_speech(pcm(body), served.rate)


def test_zero_shot_upload_and_deploy_family(served: Served) -> None:
    with served.prompt_wav.open("rb") as prompt:
        response = httpx.post(served.server.url + "/inference_zero_shot", data={"tts_text": TEXT,
                              "prompt_text": PROMPT_TEXT}, files={"prompt_wav": ("p.wav", prompt, "audio/wav")},
                              timeout=120)
    assert response.status_code == 200, response.text
    assert response.headers["x-sample-rate"] == str(served.rate)
    assert_noise_speech(pcm(response.content), served.rate)
    with served.prompt_wav.open("rb") as prompt:
        deploy = httpx.post(served.server.url + "/tts/zero_shot", data={"text": TEXT, "prompt_text": PROMPT_TEXT},
                            files={"prompt_wav": ("p.wav", prompt, "audio/wav")}, timeout=120)
    assert deploy.status_code == 200, deploy.text
    assert_noise_speech(pcm(deploy.content), int(deploy.headers["x-sample-rate"]))


def register(served: Served, voice_id: str) -> httpx.Response:
    with served.prompt_wav.open("rb") as prompt:
        return httpx.post(served.server.url + "/voices", data={"id": voice_id, "prompt_text": PROMPT_TEXT},
                          files={"prompt_wav": ("p.wav", prompt, "audio/wav")}, timeout=120)


async def speak_over_websocket(url: str, voice: str) -> tuple[list[dict], bytes]:
    async with websockets.connect(url.replace("http", "ws") + "/ws/tts") as socket:
        await socket.send(json.dumps({"text": TEXT, "voice": voice}))
        messages = []
        while (message := json.loads(await socket.recv()))["type"] not in ("done", "error"):
            messages.append(message)
    assert message["type"] == "done", message
    return messages, b"".join(base64.b64decode(m["data"]) for m in messages if m["type"] == "audio_chunk")


def speaks_with(served: Served, voice: str) -> None:
    """The voice works in the OpenAI (official client), WebSocket and deploy families."""
    client = openai.OpenAI(base_url=served.server.url + "/v1", api_key="not-needed", timeout=120)
    audio = client.audio.speech.create(model="tts-1", voice=voice, input=TEXT, response_format="wav")
    samples, rate = decode_wav(audio.content)
    assert rate == 24000
    assert_noise_speech(samples, rate)
    messages, body = asyncio.run(speak_over_websocket(served.server.url, voice))
    assert_noise_speech(pcm(body), messages[0]["sample_rate"])
    deploy = httpx.post(served.server.url + "/tts/zero_shot", data={"text": TEXT, "speaker": voice}, timeout=120)
    assert deploy.status_code == 200, deploy.text
    assert_noise_speech(pcm(deploy.content), int(deploy.headers["x-sample-rate"]))


def test_registered_voice_serves_every_family_and_survives_a_restart(served: Served, tmp_path: Path) -> None:
    """POST /voices at run time, then a restart that also preloads a --voices file: both are there and speak."""
    created = register(served, "alice")
    assert created.status_code == 201, created.text
    speaks_with(served, "alice")
    stop_server(served.server)
    voices_file = tmp_path / "voices.json"
    voices_file.write_text(json.dumps([{"id": "bob", "wav": served.prompt_wav.name, "text": PROMPT_TEXT}]))
    (tmp_path / served.prompt_wav.name).write_bytes(served.prompt_wav.read_bytes())
    served.server = start_server([*served.args, "--voices", str(voices_file)], tmp_path / "restarted.log",
                                 env={"PYTHONPATH": str(REPO)}, timeout=240, python=served.python)
    listed = {v["id"]: v["kind"] for v in httpx.get(served.server.url + "/list_voices", timeout=30).json()["voices"]}
    assert listed == {SPEAKER: "builtin", "alice": "registered", "bob": "registered"}
    speaks_with(served, "alice")
    by_spk_id = httpx.post(served.server.url + "/inference_sft", data={"tts_text": TEXT, "spk_id": "bob"}, timeout=120)
    assert by_spk_id.status_code == 200, by_spk_id.text
    assert_noise_speech(*decode_wav(by_spk_id.content))
    assert httpx.delete(served.server.url + "/voices/alice", timeout=30).status_code == 204
    assert httpx.delete(served.server.url + "/voices/bob", timeout=30).status_code == 204
    assert [v["id"] for v in httpx.get(served.server.url + "/list_voices", timeout=30).json()["voices"]] == [SPEAKER]


@pytest.mark.parametrize("mode", ["sft", "zero_shot"])
def test_upstream_client_runs_unchanged(served: Served, tmp_path: Path, mode: str) -> None:
    """The tree's runtime/python/fastapi/client.py (GET with a form body, reads raw PCM) gets audio, not an error."""
    client = served.tree / "runtime" / "python" / "fastapi" / "client.py"
    if not client.is_file():
        pytest.skip(f"{served.tree.name} has no runtime/python/fastapi/client.py")
    out = tmp_path / "client.wav"
    port = served.server.url.rsplit(":", 1)[1]
    extra = ["--spk_id", SPEAKER] if mode == "sft" else ["--prompt_wav", str(served.prompt_wav),
                                                          "--prompt_text", PROMPT_TEXT]
    result = subprocess.run([str(served.python), str(client), "--host", "127.0.0.1", "--port", port, "--mode", mode,
                             "--tts_text", TEXT, "--tts_wav", str(out), *extra],
                            cwd=client.parent, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    samples, rate = soundfile.read(out, dtype="float32")
    assert rate == UPSTREAM_CLIENT_RATE
    # The client labels every response 22050 Hz; the samples are really at the model's rate.
    assert_noise_speech(samples, served.rate)
