"""A CosyVoice call stuck inside upstream: 504 within --call_timeout, /health 503, and the launcher restarts the server.

The hang is upstream's own, triggered by data only (docs/architecture.md, "Limits and timeouts"):
a tiny v1 model whose text embedding has the older whisper vocabulary's 51866 rows, fewer than
the ids of the tokenizer the tree ships (`tiny --text_token_size 51866`). English ids fit, so the
server starts and speaks; CJK ids fall outside the table, upstream's LLM thread (`llm_job`) dies
with IndexError, and the streaming loop of upstream's `tts()` waits forever for that thread's end
flag. A streamed request's headers wait for its first audio, so this hang, before any audio,
answers a real 504; a hang after audio started can only cut the stream.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.engines.cosyvoice.tiny_models import trees_for, write_tiny
from tests.launcher.launchers import gone
from ttspilot.engines.cosyvoice.tiny import OLD_WHISPER_TEXT_TOKENS

pytestmark = [pytest.mark.integration, pytest.mark.cosyvoice, pytest.mark.slow]

CALL_TIMEOUT = 3.0
HANGS = "你好世界，这是一个测试。"  # ids above 51866 in the trees' multilingual tokenizer
SPEAKS = "Hello there, this is a short test."
SPEAKS_THEN_HANGS = "Hello there, this is a short test. " + HANGS  # two segments: "Hello there," speaks first
READY = r"tier (\w+): ready in"


@pytest.fixture(scope="module", params=trees_for(1)[-1:])  # the newest tree: the timeout and restart are ours
def faulty_v1(request: pytest.FixtureRequest, cosyvoice_python: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, Path]:
    tree = request.param
    out = tmp_path_factory.mktemp("faulty") / "v1"
    return tree, write_tiny(cosyvoice_python, tree, 1, out, "--text_token_size", str(OLD_WHISPER_TEXT_TOKENS))


def test_stuck_stream_answers_504_and_the_launcher_restarts_the_server(cosyvoice_launch, faulty_v1):
    tree, model_dir = faulty_v1
    launcher = cosyvoice_launch(
        "start_optimized_server.py", "--model_dir", str(model_dir), "--cosyvoice_root", str(tree),
        "--call_timeout", str(CALL_TIMEOUT), "--health_interval", "1", "--unhealthy_after", "2",
    )
    launcher.wait_for(READY, timeout=180)
    (first,) = launcher.server_pids()
    speech = httpx.get(launcher.url + "/inference_sft", params={"tts_text": SPEAKS, "format": "pcm", "stream": True},
                       timeout=60)
    assert speech.status_code == 200
    samples = np.frombuffer(speech.content, dtype=np.int16)
    assert samples.size > 0 and np.abs(samples).max() > 0

    started = time.monotonic()
    stuck = httpx.get(launcher.url + "/inference_sft", params={"tts_text": HANGS, "stream": True}, timeout=60)
    waited = time.monotonic() - started
    assert stuck.status_code == 504, stuck.text
    assert "--call_timeout" in stuck.json()["message"]
    assert CALL_TIMEOUT <= waited < CALL_TIMEOUT + 3, f"504 after {waited:.1f} s"
    health = httpx.get(launcher.url + "/health", timeout=5)
    assert health.status_code == 503 and health.json()["status"] == "stuck"
    assert "engine stuck" in health.json()["reason"]

    launcher.wait_for(r"server unhealthy after being ready \(/health answered 503: engine stuck[^\n]*restarting",
                      timeout=30)
    assert gone(first, timeout=20)
    assert "still running (engine stuck" in launcher.log()  # it exited by itself instead of hanging at exit
    second = launcher.wait_for_new_server({first}, timeout=30)
    assert second != first
    launcher.wait_for(READY, count=2, timeout=180)
    assert httpx.get(launcher.url + "/health", timeout=5).status_code == 200
    assert re.findall(r"restarting \((\d+)/\d+ within", launcher.log()) == ["1"]

    # After audio started the status is sent: the stream is cut, never ended as if it were whole.
    received = bytearray()
    with httpx.stream("GET", launcher.url + "/inference_sft", params={"tts_text": SPEAKS_THEN_HANGS, "stream": True,
                                                                      "format": "pcm"}, timeout=60) as cut:
        assert cut.status_code == 200
        started = time.monotonic()
        with pytest.raises(httpx.RemoteProtocolError):
            for data in cut.iter_bytes():
                received += data
    assert len(received) > 0  # the first segment's audio arrived
    assert time.monotonic() - started < CALL_TIMEOUT + 5
    launcher.wait_for(r"cut after [\d.]+ s: the engine produced no audio for 3 s \(--call_timeout\)", timeout=10)
    assert httpx.get(launcher.url + "/health", timeout=5).json()["status"] == "stuck"
    assert launcher.stop() == 0  # the stuck server still ends on SIGTERM
