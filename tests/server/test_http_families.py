"""OpenAI, v1 (HTTP + WebSocket), deploy and metrics families with real clients over loopback."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time

import av
import httpx
import numpy as np
import openai
import pytest
import websockets

from tests.support import assert_speech, decode_wav

pytestmark = pytest.mark.integration

TEXT = "Every client speaks its own dialect, and the server answers all of them."
LONG = " ".join(f"Part {i} of a longer reading keeps the stream busy for a while." for i in range(14))


def decode_any(body: bytes) -> tuple[np.ndarray, int]:
    """Decode any container/codec with FFmpeg (PyAV): proves the bytes are a real audio file."""
    with av.open(io.BytesIO(body)) as container:
        frames = [frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)]
        rate = container.streams.audio[0].rate
    audio = np.concatenate(frames).astype(np.float32)
    if np.abs(audio).max() > 1.5:
        audio /= 32768.0
    return audio, rate


@pytest.fixture(scope="module")
def oai(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="not-needed")


@pytest.mark.parametrize("response_format", ["mp3", "opus", "aac", "flac", "wav"])
def test_openai_client_every_format_decodes_to_speech(oai, response_format):
    audio = oai.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format=response_format)
    samples, rate = decode_any(audio.content)
    assert rate == (48000 if response_format == "opus" else 24000)
    assert_speech(samples, rate, TEXT)


def test_openai_pcm_is_24k_s16le(oai):
    audio = oai.audio.speech.create(model="tts-1", voice="nova", input=TEXT, response_format="pcm")
    samples = np.frombuffer(audio.content, dtype="<i2").astype(np.float32) / 32767
    assert_speech(samples, 24000, TEXT)


def test_openai_streaming_response_arrives_before_synthesis_ends(oai):
    started = time.perf_counter()
    arrivals, body = [], b""
    with oai.audio.speech.with_streaming_response.create(
        model="tts-1", voice="echo", input=LONG, response_format="mp3"
    ) as response:
        for chunk in response.iter_bytes():
            arrivals.append(time.perf_counter() - started)
            body += chunk
    assert len(arrivals) > 3
    assert arrivals[0] < 0.5 * arrivals[-1]
    samples, rate = decode_any(body)
    assert_speech(samples, rate, LONG)


def test_openai_whole_response_has_timing_headers(server):
    response = httpx.post(
        server.url + "/v1/audio/speech",
        json={"model": "tts-1", "input": TEXT, "voice": "en_US-joe-medium", "response_format": "wav", "stream": False},
        timeout=60,
    )
    assert response.status_code == 200
    assert float(response.headers["x-rtf"]) > 0
    samples, rate = decode_wav(response.content)
    assert_speech(samples, rate, TEXT)


def test_openai_errors(oai, server):
    with pytest.raises(openai.BadRequestError, match="alloy"):
        oai.audio.speech.create(model="tts-1", voice="nobody", input=TEXT)
    with pytest.raises(openai.BadRequestError, match="tts-1"):
        oai.audio.speech.create(model="whisper-1", voice="alloy", input=TEXT)
    with pytest.raises(openai.BadRequestError, match="input is empty"):
        oai.audio.speech.create(model="tts-1", voice="alloy", input="  ")
    bad_format = httpx.post(server.url + "/v1/audio/speech", json={"input": "hi", "response_format": "ogg"})
    assert bad_format.status_code == 400 and "response_format" in bad_format.json()["message"]


def test_openai_models_and_voices(oai, server):
    ids = [model.id for model in oai.models.list()]
    assert "tts-1" in ids and "ttspilot-piper" in ids
    voices = httpx.get(server.url + "/v1/audio/voices").json()
    assert voices["openai_aliases"]["alloy"] == "en_US-joe-medium"
    assert voices["voices"][0]["id"] == "en_US-joe-medium"


@pytest.mark.parametrize("audio_format", ["wav", "flac", "mp3"])
def test_v1_tts_whole(server, audio_format):
    response = httpx.post(server.url + "/v1/tts", json={"text": TEXT, "format": audio_format, "sample_rate": 16000}, timeout=60)
    assert response.status_code == 200
    assert response.headers["x-sample-rate"] == "16000"
    samples, rate = decode_any(response.content)
    assert rate == 16000
    assert_speech(samples, rate, TEXT)
    assert float(response.headers["x-audio-duration"]) == pytest.approx(len(samples) / rate, abs=0.15)  # mp3 adds encoder padding


def test_v1_tts_stream_is_chunked_wav(server):
    with httpx.stream("POST", server.url + "/v1/tts/stream", json={"text": LONG}, timeout=60) as response:
        assert response.headers.get("transfer-encoding") == "chunked"
        chunks = list(response.iter_raw())
    body = b"".join(chunks)
    assert len(chunks) > 3 and body[:4] == b"RIFF"
    samples, rate = decode_any(body)
    assert_speech(samples, rate, LONG)


def test_v1_errors(server):
    assert httpx.post(server.url + "/v1/tts", json={"text": ""}).status_code == 400
    unknown = httpx.post(server.url + "/v1/tts", json={"text": "hi", "speaker": "ghost"})
    assert unknown.status_code == 404 and "en_US-joe-medium" in unknown.json()["message"]
    assert httpx.post(server.url + "/v1/tts", content=b"{not json", headers={"content-type": "application/json"}).status_code == 400


def test_websocket_several_requests_and_errors_on_one_connection(server):
    async def conversation() -> list[list[dict]]:
        replies: list[list[dict]] = []
        async with websockets.connect(server.url.replace("http", "ws") + "/ws/tts") as socket:
            for message in (json.dumps({"text": TEXT}), "not json", json.dumps({"text": "hi", "speaker": "ghost"}),
                            json.dumps({"text": "Second request on the same socket.", "sample_rate": 16000})):
                await socket.send(message)
                answer = []
                while True:
                    reply = json.loads(await socket.recv())
                    answer.append(reply)
                    if reply["type"] in ("done", "error"):
                        break
                replies.append(answer)
        return replies

    first, bad_json, bad_voice, second = asyncio.run(conversation())
    assert first[-1]["type"] == "done" and first[-1]["rtf"] > 0 and first[-1]["request_id"]
    pcm = b"".join(base64.b64decode(m["data"]) for m in first if m["type"] == "audio_chunk")
    assert_speech(np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32767, first[0]["sample_rate"], TEXT)
    assert bad_json == [{"type": "error", "message": bad_json[0]["message"]}] and "JSON" in bad_json[0]["message"]
    assert bad_voice[0]["type"] == "error" and "en_US-joe-medium" in bad_voice[0]["message"]
    assert second[0]["sample_rate"] == 16000 and second[-1]["type"] == "done"


def test_deploy_stream_is_16k_pcm(server):
    with httpx.stream("POST", server.url + "/tts/stream", data={"text": TEXT}, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["x-sample-rate"] == "16000"
        body = b"".join(response.iter_raw())
    assert_speech(np.frombuffer(body, dtype="<i2").astype(np.float32) / 32767, 16000, TEXT)


def test_deploy_prompt_on_piper_is_400(server):
    response = httpx.post(
        server.url + "/tts/stream", data={"text": "hi", "prompt_text": "hello"},
        files={"prompt_wav": ("p.wav", b"RIFF....", "audio/wav")},
    )
    assert response.status_code == 400 and "not supported by this engine" in response.json()["message"]


def test_metrics_count_requests_and_audio(server):
    httpx.get(server.url + "/inference_sft", params={"tts_text": TEXT}, timeout=60)
    text = httpx.get(server.url + "/metrics").text
    assert 'ttspilot_http_requests_total{route="/inference_sft",status="200"}' in text
    assert "ttspilot_rtf_bucket" in text and "ttspilot_time_to_first_audio_seconds_count" in text
    assert 'ttspilot_active_tier{engine="piper",tier="cpu"} 1.0' in text
    assert "ttspilot_queue_depth" in text
    audio_seconds = float(next(line.split()[-1] for line in text.splitlines() if line.startswith("ttspilot_audio_seconds_total")))
    assert audio_seconds > 1.0
