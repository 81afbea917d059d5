"""Zero-shot, instruct and voice-registration endpoints on the Piper engine: a clear 400, never audio or a 500.

And upstream CosyVoice's client convention on /inference_sft (a GET with a form body gets raw PCM),
which every engine serves.
"""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
import soundfile

from tests.support import assert_speech

pytestmark = pytest.mark.integration

TEXT = "Upstream's client reads the answer as raw samples at the model's rate."


def prompt_wav() -> bytes:
    """Two seconds of noise at 22050 Hz: a recording every check on prompts accepts."""
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).uniform(-0.3, 0.3, 44100).astype(np.float32)
    soundfile.write(buffer, noise, 22050, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


UPLOAD = {"prompt_wav": ("prompt_wav", prompt_wav(), "application/octet-stream")}
UNSUPPORTED = [
    ("GET", "/inference_zero_shot", {"tts_text": "hi", "prompt_text": "hello"}, UPLOAD, "zero-shot voice cloning"),
    ("POST", "/inference_zero_shot", {"tts_text": "hi", "prompt_text": "hello"}, UPLOAD, "zero-shot voice cloning"),
    ("GET", "/inference_cross_lingual", {"tts_text": "hi"}, UPLOAD, "cross-lingual cloning"),
    ("POST", "/inference_instruct", {"tts_text": "hi", "spk_id": "x", "instruct_text": "calm"}, None,
     "instructions with a built-in voice"),
    ("POST", "/inference_instruct2", {"tts_text": "hi", "instruct_text": "calm"}, UPLOAD,
     "instructions with a voice prompt"),
    ("POST", "/tts/zero_shot", {"text": "hi", "prompt_text": "hello"}, UPLOAD, "zero-shot voice cloning"),
    ("POST", "/tts/zero_shot", {"text": "hi", "speaker": "en_US-joe-medium"}, None, "zero-shot voice cloning"),
    ("POST", "/tts/stream", {"text": "hi", "prompt_text": "hello"}, UPLOAD, "zero-shot voice cloning"),
    ("POST", "/voices", {"id": "mine", "prompt_text": "hello"}, UPLOAD, "registering voices"),
    ("DELETE", "/voices/en_US-joe-medium", None, None, "registering voices"),
]


@pytest.mark.parametrize(("method", "path", "data", "files", "feature"), UNSUPPORTED,
                         ids=[f"{m} {p}" for m, p, *_ in UNSUPPORTED])
def test_piper_refuses_what_it_cannot_do(server, method, path, data, files, feature):
    response = httpx.request(method, server.url + path, data=data, files=files, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["message"] == f"not supported by this engine: {feature} (piper)"
    assert response.json()["error"]["type"] == "unsupported"


def test_v1_instruct_text_on_piper_is_400(server):
    response = httpx.post(server.url + "/v1/tts", json={"text": "hi", "instruct_text": "whisper"}, timeout=30)
    assert response.status_code == 400
    assert response.json()["message"].startswith("not supported by this engine: instructions")


def test_get_with_a_form_body_is_upstreams_client_and_gets_raw_pcm_at_the_model_rate(server):
    """As upstream's client.py sends it: GET, form-encoded body, the answer read as s16le at the model's rate."""
    with httpx.stream("GET", server.url + "/inference_sft", data={"tts_text": TEXT, "spk_id": "en_US-joe-medium"},
                      timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/pcm"
        assert response.headers["x-sample-rate"] == "22050"
        assert response.headers["x-request-id"]
        body = b"".join(response.iter_raw())
    assert body[:4] != b"RIFF" and len(body) % 2 == 0
    assert_speech(np.frombuffer(body, dtype="<i2").astype(np.float32) / 32767, 22050, TEXT)


def test_get_with_query_parameters_still_gets_wav(server):
    response = httpx.get(server.url + "/inference_sft", params={"tts_text": TEXT}, timeout=60)
    assert response.status_code == 200 and response.content[:4] == b"RIFF"


def test_get_with_a_bad_form_field_is_400(server):
    response = httpx.request("GET", server.url + "/inference_sft", data={"tts_text": TEXT, "speed": "fast"}, timeout=30)
    assert response.status_code == 400 and "speed" in response.json()["message"]


def test_voice_lists_say_each_voice_is_built_in(server):
    listed = httpx.get(server.url + "/list_voices").json()["voices"]
    openai = httpx.get(server.url + "/v1/audio/voices").json()["voices"]
    assert {voice["kind"] for voice in listed} == {voice["kind"] for voice in openai} == {"builtin"}
