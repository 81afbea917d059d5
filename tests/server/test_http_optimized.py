"""The optimized-server family over real HTTP on loopback, against the embedded voice."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support import assert_speech, decode_wav, finished_record

pytestmark = pytest.mark.integration

SENTENCE = "Hello there. This is ttspilot speaking from a real neural voice."
LONG = " ".join(
    f"Sentence number {i} tells a small story about a quiet town by the river, where people walk slowly."
    for i in range(12)
)


def test_whole_wav_is_speech_with_headers(client):
    response = client.get("/inference_sft", params={"tts_text": SENTENCE})
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    audio, rate = decode_wav(response.content)
    assert rate == 22050
    assert_speech(audio, rate, SENTENCE)
    headers = response.headers
    assert headers["x-sample-rate"] == "22050"
    assert len(headers["x-request-id"]) >= 8
    assert float(headers["x-audio-duration"]) == pytest.approx(len(audio) / rate, abs=0.01)
    processing = float(headers["x-processing-time"])
    assert processing > 0
    assert float(headers["x-rtf"]) == pytest.approx(processing / float(headers["x-audio-duration"]), rel=0.01)
    assert "synthesis;dur=" in headers["server-timing"]


def test_post_form_with_resampling_and_client_request_id(client):
    response = client.post(
        "/inference_sft",
        data={"tts_text": SENTENCE, "sample_rate": "16000", "speed": "1.5"},
        headers={"X-Request-ID": "my-call-42"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "my-call-42"
    audio, rate = decode_wav(response.content)
    assert rate == 16000
    assert_speech(audio, rate, SENTENCE)


def test_speed_changes_duration(client):
    slow = decode_wav(client.get("/inference_sft", params={"tts_text": SENTENCE, "speed": 0.5}).content)
    fast = decode_wav(client.get("/inference_sft", params={"tts_text": SENTENCE, "speed": 2.0}).content)
    assert len(slow[0]) / slow[1] > 2.5 * len(fast[0]) / fast[1]


def test_whole_pcm_matches_header_rate(client):
    response = client.get("/inference_sft", params={"tts_text": SENTENCE, "format": "pcm", "sample_rate": 24000})
    assert response.status_code == 200
    audio = np.frombuffer(response.content, dtype="<i2").astype(np.float32) / 32767
    assert_speech(audio, 24000, SENTENCE)
    assert float(response.headers["x-audio-duration"]) == pytest.approx(len(audio) / 24000, abs=0.02)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
def test_every_supported_rate(client, rate):
    response = client.get("/inference_sft", params={"tts_text": "Check the rate.", "sample_rate": rate})
    audio, got = decode_wav(response.content)
    assert got == rate
    assert_speech(audio, got, "Check the rate.")


def test_streamed_pcm_arrives_in_several_chunks_and_is_speech(client):
    with client.stream("GET", "/inference_sft", params={"tts_text": LONG, "format": "stream"}) as response:
        assert response.status_code == 200
        assert response.headers["x-sample-rate"] == "22050"
        assert "x-request-id" in response.headers
        assert "x-rtf" not in response.headers
        chunks = [chunk for chunk in response.iter_raw() if chunk]
        request_id = response.headers["x-request-id"]
    assert len(chunks) > 3
    audio = np.frombuffer(b"".join(chunks), dtype="<i2").astype(np.float32) / 32767
    assert_speech(audio, 22050, LONG)
    info = finished_record(str(client.base_url).rstrip("/"), request_id)
    assert info["outcome"] == "ok"
    assert info["segments"] > 5
    assert info["time_to_first_audio_s"] < info["processing_s"] / 3


def test_streamed_wav_is_playable_while_it_arrives(client):
    with client.stream("POST", "/inference_sft", data={"tts_text": LONG, "stream": "true", "sample_rate": "16000"}) as response:
        body = b"".join(response.iter_raw())
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE"
    audio = np.frombuffer(body[44:], dtype="<i2").astype(np.float32) / 32767
    assert_speech(audio, 16000, LONG)


def test_disconnect_mid_stream_stops_remaining_segments(client):
    with client.stream("GET", "/inference_sft", params={"tts_text": LONG * 3, "format": "stream"}) as response:
        request_id = response.headers["x-request-id"]
        next(response.iter_raw())
    deadline_info = finished_record(str(client.base_url).rstrip("/"), request_id)
    assert deadline_info["outcome"] == "cancelled"
    full_seconds = 0.06 * len(LONG * 3)
    assert deadline_info["audio_s"] < full_seconds / 4
    assert client.get("/inference_sft", params={"tts_text": "Still serving."}).status_code == 200


BAD_INPUTS = [
    ({"tts_text": ""}, 400, "empty"),
    ({"tts_text": "   \n\t "}, 400, "empty"),
    ({}, 400, "tts_text"),
    ({"tts_text": "x" * 10_001}, 413, "at most 10000"),
    ({"tts_text": "hi", "spk_id": "nobody"}, 404, "en_US-joe-medium"),
    ({"tts_text": "hi", "speed": "3"}, 400, "speed"),
    ({"tts_text": "hi", "speed": "0.1"}, 400, "speed"),
    ({"tts_text": "hi", "speed": "fast"}, 400, "speed"),
    ({"tts_text": "hi", "format": "mp4"}, 400, "format"),
    ({"tts_text": "hi", "sample_rate": "12345"}, 400, "8000, 16000"),
    ({"tts_text": "hi", "max_text_length": "1"}, 400, "max_text_length"),
]


@pytest.mark.parametrize(("params", "status", "words"), BAD_INPUTS)
def test_bad_input_is_a_clear_4xx(client, params, status, words):
    for response in (client.get("/inference_sft", params=params), client.post("/inference_sft", data=params)):
        assert response.status_code == status, response.text
        body = response.json()
        assert words in body["message"]
        assert body["error"]


def test_malformed_form_body_is_4xx_and_server_keeps_serving(client):
    response = client.post(
        "/inference_sft",
        content=b"--xyz\r\nContent-Disposition: form-data; name=\"tts_text\"\r\n\r\nhalf",
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert 400 <= response.status_code < 500
    assert client.get("/health").status_code == 200
    assert client.get("/inference_sft", params={"tts_text": "Still here."}).status_code == 200


def test_performance_info_reports_what_is_really_active(client):
    info = client.get("/performance_info").json()
    config = info["effective_config"]
    assert config["providers"] == ["CPUExecutionProvider"]
    assert config["device"] == "cpu"
    for flag in ("load_trt", "fp16"):
        assert config["flags"][flag]["active"] is False
        assert config["flags"][flag]["reason"]
    assert info["stats"]["requests_total"] >= 1
    assert info["hardware"]["cpu_cores"] >= 1


def test_list_voices_warmup_health_docs(client):
    voices = client.get("/list_voices").json()
    assert voices["default"] == "en_US-joe-medium"
    assert voices["voices"][0]["engine"] == "piper"
    warm = client.post("/warmup_trt")
    assert warm.status_code == 200 and warm.json()["tensorrt_active"] is False
    request_id = warm.headers["x-request-id"]
    assert warm.json()["request_id"] == request_id and warm.json()["warmed_up"] is True
    found = finished_record(str(client.base_url).rstrip("/"), request_id)
    assert found["route"] == "/warmup_trt" and found["outcome"] == "ok" and found["audio_s"] > 1.0
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ready"
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert "/inference_sft" in schema["paths"]


@pytest.mark.parametrize("text", ["N\\u0000O", "\\u0000", "bell\\u0007 and \\udcb6 surrogate"])
def test_control_characters_are_dropped_not_fatal(client, text):
    response = client.post("/v1/tts", content='{"text": "%s"}' % text, headers={"content-type": "application/json"})
    if text == "\\u0000":
        assert response.status_code == 400
    else:
        assert response.status_code == 200
        audio, rate = decode_wav(response.content)
        assert audio.size > 0 and np.isfinite(audio).all()
