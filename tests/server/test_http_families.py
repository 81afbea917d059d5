"""OpenAI, v1 (HTTP + WebSocket), deploy and metrics families with real clients over loopback."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
import wave

import av
import httpx
import numpy as np
import openai
import pytest
import soundfile
import websockets

from tests.support import assert_speech, decode_wav, finished_record

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
    with pytest.raises(openai.NotFoundError, match="alloy"):
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
    by_voice = httpx.post(server.url + "/v1/tts", json={"text": "hi", "voice": "nonexistent"})
    assert by_voice.status_code == 404 and by_voice.json()["valid_voices"] == ["en_US-joe-medium"]
    typo = httpx.post(server.url + "/v1/tts", json={"text": "hi", "voise": "en_US-joe-medium", "sped": 2})
    assert typo.status_code == 422
    assert typo.json()["error"] == {"message": "unknown fields: voise, sped", "type": "unknown_field"}
    bad_value = httpx.post(server.url + "/v1/tts", json={"text": "hi", "speed": "fast"})
    assert bad_value.status_code == 400 and "speed" in bad_value.json()["message"]
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


def test_v1_voice_is_an_alias_of_speaker(server):
    response = httpx.post(server.url + "/v1/tts", json={"text": TEXT, "voice": "en_US-joe-medium"}, timeout=60)
    assert response.status_code == 200
    assert_speech(*decode_wav(response.content), TEXT)


UNKNOWN_VOICE = [
    ("get", "/inference_sft", {"params": {"tts_text": "hi", "spk_id": "ghost"}}),
    ("post", "/v1/tts", {"json": {"text": "hi", "speaker": "ghost"}}),
    ("post", "/v1/tts/stream", {"json": {"text": "hi", "voice": "ghost"}}),
    ("post", "/v1/audio/speech", {"json": {"input": "hi", "voice": "ghost"}}),
    ("post", "/tts/stream", {"data": {"text": "hi", "speaker": "ghost"}}),
]


@pytest.mark.parametrize(("method", "path", "field"), UNKNOWN_VOICE)
def test_unknown_voice_is_the_same_404_in_every_family(server, method, path, field):
    response = getattr(httpx, method)(server.url + path, timeout=30, **field)
    assert response.status_code == 404
    body = response.json()
    assert body["error"]["type"] == "voice_not_found" and "en_US-joe-medium" in body["valid_voices"]


NOTHING_TO_SPEAK = [
    ("get", "/inference_sft", lambda text: {"params": {"tts_text": text}}),
    ("post", "/v1/tts", lambda text: {"json": {"text": text}}),
    ("post", "/v1/audio/speech", lambda text: {"json": {"input": text}}),
    ("post", "/tts/stream", lambda text: {"data": {"text": text}}),
]


@pytest.mark.parametrize("text", ["...", "?!", " -- "])
@pytest.mark.parametrize(("method", "path", "field"), NOTHING_TO_SPEAK)
def test_punctuation_alone_is_nothing_to_speak(server, method, path, field, text):
    response = getattr(httpx, method)(server.url + path, timeout=30, **field(text))
    assert response.status_code == 400 and "nothing to speak" in response.json()["message"]


def header_frames(body: bytes, audio_format: str) -> list[int]:
    """Frames as each reader sees them: the header for wave and soundfile, the decoded samples for FFmpeg."""
    with av.open(io.BytesIO(body)) as container:
        decoded = sum(frame.samples for frame in container.decode(audio=0))
    frames = [soundfile.info(io.BytesIO(body)).frames, decoded]
    if audio_format == "wav":
        with wave.open(io.BytesIO(body)) as reader:
            frames.append(reader.getnframes())
    return frames


WHOLE_FILES = [
    ("/v1/tts", {"text": TEXT, "format": "wav"}, "wav"),
    ("/v1/tts", {"text": TEXT, "format": "flac"}, "flac"),
    ("/v1/tts", {"text": TEXT, "format": "mp3"}, "mp3"),
    ("/v1/tts", {"text": TEXT, "format": "opus", "sample_rate": 48000}, "opus"),
    ("/v1/audio/speech", {"input": TEXT, "response_format": "wav", "stream": False}, "wav"),
    ("/v1/audio/speech", {"input": TEXT, "response_format": "flac", "stream": False}, "flac"),
    ("/v1/audio/speech", {"input": TEXT, "response_format": "mp3", "stream": False}, "mp3"),
]


@pytest.mark.parametrize(("path", "body", "audio_format"), WHOLE_FILES)
def test_whole_file_header_states_the_audio_length(server, path, body, audio_format):
    response = httpx.post(server.url + path, json=body, timeout=60)
    assert response.status_code == 200
    frames = header_frames(response.content, audio_format)
    expected = float(response.headers["x-audio-duration"]) * int(response.headers["x-sample-rate"])
    assert len(set(frames)) == 1, frames
    assert frames[0] == pytest.approx(expected, abs=0.01 * expected)


WHOLE_RESPONSES = [
    ("get", "/inference_sft", {"params": {"tts_text": TEXT}}),
    ("get", "/inference_sft", {"params": {"tts_text": TEXT, "format": "pcm"}}),
    ("post", "/inference_sft", {"data": {"tts_text": TEXT}}),
    ("post", "/v1/tts", {"json": {"text": TEXT, "format": "mp3"}}),
    ("post", "/v1/audio/speech", {"json": {"input": TEXT, "stream": False}}),
    ("post", "/v1/audio/speech", {"json": {"input": TEXT, "stream": False, "response_format": "pcm"}}),
]
WHOLE_HEADERS = {"x-request-id", "x-processing-time", "x-audio-duration", "x-rtf", "x-sample-rate", "server-timing"}


@pytest.mark.parametrize(("method", "path", "field"), WHOLE_RESPONSES)
def test_every_whole_response_carries_every_timing_header(server, method, path, field):
    response = getattr(httpx, method)(server.url + path, timeout=60, **field)
    assert response.status_code == 200
    assert WHOLE_HEADERS <= set(response.headers)
    assert float(response.headers["x-rtf"]) > 0 and float(response.headers["x-audio-duration"]) > 0


STREAMED_RESPONSES = [
    ("/v1/tts/stream", {"json": {"text": TEXT}}),
    ("/v1/audio/speech", {"json": {"input": TEXT}}),
    ("/v1/audio/speech", {"json": {"input": TEXT, "stream_format": "sse"}}),
    ("/tts/stream", {"data": {"text": TEXT}}),
]


@pytest.mark.parametrize(("path", "field"), STREAMED_RESPONSES)
def test_streamed_response_has_id_and_rate_and_timings_by_id(server, path, field):
    with httpx.stream("POST", server.url + path, timeout=60, **field) as response:
        assert response.status_code == 200
        assert {"x-request-id", "x-sample-rate"} <= set(response.headers)
        request_id = response.headers["x-request-id"]
        response.read()
    found = finished_record(server.url, request_id)
    assert found["outcome"] == "ok" and found["audio_s"] > 1 and found["rtf"] > 0


def sse_events(body: str) -> list[dict]:
    return [json.loads(line.removeprefix("data: ")) for line in body.splitlines() if line.startswith("data: ")]


def test_openai_sse_stream_format(oai):
    with oai.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="alloy", input=TEXT, response_format="pcm", stream_format="sse"
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.text())
    *deltas, done = events
    assert {event["type"] for event in deltas} == {"speech.audio.delta"} and len(deltas) >= 1
    assert done["type"] == "speech.audio.done"
    assert done["usage"]["total_tokens"] == done["usage"]["input_tokens"] + done["usage"]["output_tokens"] > 0
    pcm = b"".join(base64.b64decode(event["audio"]) for event in deltas)
    assert_speech(np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32767, 24000, TEXT)


def test_openai_sse_mp3_deltas_join_into_a_file(server):
    response = httpx.post(
        server.url + "/v1/audio/speech", timeout=60,
        json={"input": TEXT, "response_format": "mp3", "stream_format": "sse"},
    )
    deltas = [event for event in sse_events(response.text) if event["type"] == "speech.audio.delta"]
    body = b"".join(base64.b64decode(event["audio"]) for event in deltas)
    assert_speech(*decode_any(body), TEXT)


def test_openai_speed_range_is_openais(oai, server):
    def seconds(speed: float) -> float:
        audio = oai.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format="wav", speed=speed)
        samples, rate = decode_any(audio.content)
        assert np.isfinite(samples).all() and np.sqrt(np.mean(samples**2)) > 0.01
        return len(samples) / rate

    slowest, normal, fastest = seconds(0.25), seconds(1.0), seconds(4.0)
    assert slowest > 3 * normal and fastest < 0.6 * normal  # Piper's frames per phoneme floor flattens 4.0 to about 2x
    with pytest.raises(openai.BadRequestError, match="speed"):
        oai.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, speed=4.5)
    other_family = httpx.post(server.url + "/v1/tts", json={"text": TEXT, "speed": 4.0})
    assert other_family.status_code == 400 and "between 0.5 and 2.0" in other_family.json()["message"]


def test_openai_instructions_the_engine_cannot_follow_are_flagged(oai):
    response = oai.audio.speech.with_raw_response.create(
        model="gpt-4o-mini-tts", voice="alloy", input=TEXT, instructions="Whisper, slowly."
    )
    assert "engine piper cannot follow instructions" in response.headers["warning"]
    assert response.headers["warning"].startswith('299 - "')
    plain = oai.audio.speech.with_raw_response.create(model="tts-1", voice="alloy", input=TEXT)
    assert "warning" not in plain.headers


def test_openai_voice_object_form(server):
    response = httpx.post(
        server.url + "/v1/audio/speech", timeout=60,
        json={"input": TEXT, "voice": {"id": "en_US-joe-medium"}, "stream": False},
    )
    assert response.status_code == 200
    assert_speech(*decode_any(response.content), TEXT)


@pytest.mark.parametrize("text", ["你好，世界。今天天气很好。", "😀 🎉 😀"])
def test_text_outside_the_voice_language_is_spoken_with_a_warning(server, text):
    response = httpx.post(server.url + "/v1/tts", json={"text": text}, timeout=60)
    assert response.status_code == 200
    assert response.headers["warning"].startswith('299 - "') and "en-us" in response.headers["warning"]
    request_id = response.headers["x-request-id"]
    deadline = time.monotonic() + 5
    while f"request {request_id}: " not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"request {request_id}: " in server.log()
    english = httpx.post(server.url + "/v1/tts", json={"text": TEXT}, timeout=60)
    assert "warning" not in english.headers


def test_access_log_keeps_the_text_out(server):
    secret = "My private diary entry number 7312 about the zebra."
    response = httpx.get(server.url + "/inference_sft", params={"tts_text": secret}, timeout=60)
    request_id = response.headers["x-request-id"]
    deadline = time.monotonic() + 5
    while request_id not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = server.log()
    assert "zebra" not in log and "diary" not in log
    line = next(line for line in log.splitlines() if request_id in line)
    assert "GET /inference_sft 200" in line and f"text={len(secret)} chars" in line
