"""start_optimized_server.py --ray as an operator runs it: a local Ray, the README's requests, a clean stop."""

from __future__ import annotations

import asyncio
import base64
import json
import signal

import httpx
import numpy as np
import psutil
import pytest
import websockets

from tests.launcher.launchers import Launcher
from tests.support import assert_speech, decode_wav

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEXT = "Hello from ttspilot, served through Ray."


def test_ray_launch_serves_the_readme_requests_and_stops_with_everything_it_started(tmp_path):
    launcher = Launcher("start_optimized_server.py", ["--ray", "--replicas", "2", "--gpus_per_replica", "0"],
                        tmp_path / "launcher.log")  # 0: a machine with GPUs too runs the cpu replicas this test checks
    ray_processes: list[psutil.Process] = []  # what the launch started: Ray's GCS, raylet, workers
    try:
        launcher.wait_for(r"ray: serving on http://127\.0\.0\.1:\d+ through Ray Serve's proxy", timeout=180)
        assert "ray: 2 replica(s), 0 GPU per replica, admission 8" in launcher.log()
        # The replicas' own operator lines reach the launcher's output through Ray (which folds identical lines).
        launcher.wait_for(r"\[ttspilot\] plan: try cpu: no usable GPU: Ray assigned this replica no GPU")
        launcher.wait_for(r"\[ttspilot\] tier cpu: canary passed, serving")
        wav = httpx.get(launcher.url + "/inference_sft", params={"tts_text": TEXT}, timeout=60)
        assert wav.status_code == 200 and wav.headers["x-ttspilot-replica"]
        assert_speech(*decode_wav(wav.content), TEXT)
        speech = httpx.post(launcher.url + "/v1/audio/speech", timeout=60, json={
            "model": "tts-1", "input": TEXT, "voice": "alloy", "response_format": "wav", "stream": False})
        assert_speech(*decode_wav(speech.content), TEXT)

        async def over_websocket() -> bytes:
            async with websockets.connect(launcher.url.replace("http", "ws") + "/ws/tts") as socket:
                await socket.send(json.dumps({"text": TEXT}))
                pcm = b""
                while (reply := json.loads(await socket.recv()))["type"] == "audio_chunk":
                    pcm += base64.b64decode(reply["data"])
                assert reply["type"] == "done"
                return pcm

        pcm = asyncio.run(over_websocket())
        assert_speech(np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32767, 22050, TEXT)
        view = httpx.get(launcher.url + "/cluster_info", timeout=30).json()
        assert view["count"] == 2 and {entry["tier"] for entry in view["replicas"]} == {"cpu"}
        ray_processes = psutil.Process(launcher.process.pid).children(recursive=True)
        assert ray_processes
    finally:
        launcher.process.send_signal(signal.SIGTERM)
        code = launcher.wait_exit(timeout=90)
    assert code == 0, launcher.log()
    assert "ray: stopping" in launcher.log()
    _, alive = psutil.wait_procs(ray_processes, timeout=30)
    assert not alive, f"left running: {[(p.pid, p.name()) for p in alive]}"
