"""Both launchers bring up a tiny CosyVoice2 on this machine's best tier, with the official code of each tree.

The optimized launcher gets the checkout as --cosyvoice_root, the fallback launcher as
TTSPILOT_COSYVOICE_ROOT (the server child inherits the environment); both pass --voices and
--call_timeout through to the server unchanged.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile

from tests.engines.cosyvoice.tiny_models import trees_for, write_tiny
from tests.support import decode_wav

pytestmark = [pytest.mark.integration, pytest.mark.cosyvoice, pytest.mark.slow]

TEXT = "The launcher started CosyVoice."


@pytest.fixture(scope="module", params=trees_for(2))
def tiny_v2(request: pytest.FixtureRequest, cosyvoice_python: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[Path, Path]:
    return request.param, write_tiny(cosyvoice_python, request.param, 2, tmp_path_factory.mktemp("tiny") / "v2")


@pytest.mark.parametrize("script", ["start_optimized_server.py", "start_fallback_server.py"])
def test_launcher_serves_tiny_cosyvoice2(cosyvoice_launch, tiny_v2, tmp_path, script):
    tree, model_dir = tiny_v2
    prompt = np.random.default_rng(0).uniform(-0.3, 0.3, 2 * 16000).astype(np.float32)  # noise, as the model's audio
    soundfile.write(tmp_path / "guest.wav", prompt, 16000)
    voices = tmp_path / "voices.json"
    voices.write_text(json.dumps([{"id": "guest", "wav": "guest.wav", "text": "A short prompt for the guest."}]))
    passthrough = ["--voices", str(voices), "--call_timeout", "30"]
    if script == "start_optimized_server.py":
        launcher = cosyvoice_launch(script, "--model_dir", str(model_dir), "--cosyvoice_root", str(tree),
                                    *passthrough)
    else:
        launcher = cosyvoice_launch(script, "--model_dir", str(model_dir), *passthrough,
                                    env={"TTSPILOT_COSYVOICE_ROOT": str(tree)})
    tier = launcher.wait_for(r"tier (\w+): ready in", timeout=180)[0]
    started = re.search(rf"tier {tier}: starting (.*)", launcher.log()).group(1)
    assert f"--voices {voices}" in started and "--call_timeout 30" in started

    info = httpx.get(launcher.url + "/performance_info", timeout=30).json()
    assert info["effective_config"]["engine"] == "cosyvoice"
    voice_ids = [voice["id"] for voice in httpx.get(launcher.url + "/v1/audio/voices", timeout=30).json()["voices"]]
    assert "guest" in voice_ids  # registered from --voices at start
    response = httpx.get(launcher.url + "/inference_sft", params={"tts_text": TEXT}, timeout=60)
    assert response.status_code == 200, response.text
    audio, rate = decode_wav(response.content)
    assert rate == 24000 and audio.size > 0
    assert np.isfinite(audio).all() and float(np.sqrt(np.mean(audio**2))) > 0
    assert launcher.stop() == 0
