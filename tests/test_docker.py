"""The container images as an operator runs them (docker/Dockerfile): built on a local Debian base, served,
stopped with SIGTERM, restarted on the same cache volume; and the Dockerfile's lint.

One file, so `--dist loadfile` keeps every docker test in one worker; the daemon is started when none runs
(tests/docker_env.py) and every test skips, loudly, only when it cannot be.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import websockets
import yaml

from tests import docker_env
from tests.support import assert_speech, decode_wav, say

pytestmark = [pytest.mark.docker, pytest.mark.integration, pytest.mark.slow]

TEXT = "Hello from ttspilot, served from its container."
API_KEY = "container-test-key"
MAX_TEXT = 400
IMAGE_SIZE_GOAL = 1.2e9
STOP_LIMIT = 10.0


@pytest.fixture(scope="module")
def images(request: pytest.FixtureRequest) -> Iterator[tuple[docker_env.Build, docker_env.Build]]:
    """Both images built (or found in the layer cache); the dockerd this module started is stopped at its end."""
    def log(line: str) -> None:
        say(request.config, line)

    try:
        started = docker_env.ensure_daemon(log)
    except docker_env.DockerUnavailable as error:
        reason = f"Docker unavailable, container image tests SKIPPED: {error}"
        say(request.config, f"WARNING: {reason}")
        pytest.skip(reason)
    try:
        yield docker_env.prepare(log)
    finally:
        if started:
            docker_env.stop_daemon(log)


class Container:
    """One `docker run -d` of an image, published on a free loopback port; removed however the test ends."""

    def __init__(self, image: str, volume: str, env: dict[str, str]) -> None:
        self.name = f"ttspilot-test-{uuid.uuid4().hex[:8]}"
        flags = [item for name, value in env.items() for item in ("-e", f"{name}={value}")]
        docker_env.docker("run", "-d", "--name", self.name, "-p", "127.0.0.1::9234", "-v", f"{volume}:/cache",
                          *flags, image)
        port = docker_env.docker("port", self.name, "9234").stdout.split()[0].rsplit(":", 1)[1]
        self.url = f"http://127.0.0.1:{port}"

    def logs(self) -> str:
        result = docker_env.docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def inspect(self, template: str) -> str:
        return docker_env.docker("inspect", "-f", template, self.name).stdout.strip()

    def wait_healthy(self, timeout: float = 180.0) -> None:
        """/health answers 200 through the published port, and Docker's own HEALTHCHECK agrees."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.inspect("{{.State.Running}}") == "true", self.logs()
            try:
                if httpx.get(self.url + "/health", timeout=5).status_code == 200 and \
                        self.inspect("{{.State.Health.Status}}") == "healthy":
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise AssertionError(f"not healthy within {timeout:.0f} s:\n{self.logs()}")

    def stop(self) -> float:
        """`docker stop` (SIGTERM, then SIGKILL after 10 s): how long it took."""
        started = time.monotonic()
        docker_env.docker("stop", "-t", str(int(STOP_LIMIT)), self.name, timeout=60)
        return time.monotonic() - started

    def remove(self) -> None:
        docker_env.docker("rm", "-f", self.name, check=False)


@pytest.fixture
def cache_volume() -> Iterator[str]:
    name = f"ttspilot-test-cache-{uuid.uuid4().hex[:8]}"
    docker_env.docker("volume", "create", name)
    yield name
    docker_env.docker("volume", "rm", "-f", name, check=False)


def readme_requests(url: str) -> None:
    """The README's requests (WAV, stream, OpenAI, v1, WebSocket, deploy), with the key the container was given."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        assert client.get("/inference_sft", params={"tts_text": TEXT}, headers={"Authorization": ""}).status_code \
            == 401
        wav = client.get("/inference_sft", params={"tts_text": TEXT})
        assert wav.status_code == 200, wav.text
        assert_speech(*decode_wav(wav.content), TEXT)
        stream = client.post("/inference_sft", data={"tts_text": TEXT, "format": "stream"})
        rate = int(stream.headers["x-sample-rate"])
        assert_speech(np.frombuffer(stream.content, dtype="<i2").astype(np.float32) / 32767, rate, TEXT)
        speech = client.post("/v1/audio/speech", json={
            "model": "tts-1", "input": TEXT, "voice": "alloy", "response_format": "wav", "stream": False})
        assert_speech(*decode_wav(speech.content), TEXT)
        v1 = client.post("/v1/tts", json={"text": TEXT, "sample_rate": 16000})
        assert_speech(*decode_wav(v1.content), TEXT)
        deploy = client.post("/tts/stream", data={"text": TEXT})
        assert_speech(np.frombuffer(deploy.content, dtype="<i2").astype(np.float32) / 32767, 16000, TEXT)
        too_long = client.post("/v1/tts", json={"text": "word " * MAX_TEXT})  # TTSPILOT_MAX_TEXT_LENGTH reached it
        assert 400 <= too_long.status_code < 500, too_long.text
        assert client.get("/metrics").status_code == 200

    async def over_websocket() -> bytes:
        async with websockets.connect(url.replace("http", "ws") + "/ws/tts", additional_headers=headers) as socket:
            await socket.send(json.dumps({"text": TEXT}))
            pcm = b""
            while (reply := json.loads(await socket.recv()))["type"] == "audio_chunk":
                pcm += base64.b64decode(reply["data"])
            assert reply["type"] == "done", reply
            return pcm

    pcm = asyncio.run(over_websocket())
    assert_speech(np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32767, 22050, TEXT)


def test_cpu_image_serves_stops_on_sigterm_and_restarts_from_its_cache_volume(images, cache_volume, request):
    cpu, _ = images
    env = {"TTSPILOT_API_KEY": API_KEY, "TTSPILOT_MAX_TEXT_LENGTH": str(MAX_TEXT)}
    first = Container(cpu.tag, cache_volume, env)
    try:
        first.wait_healthy()
        readme_requests(first.url)
        assert docker_env.docker("exec", first.name, "id", "-u").stdout.strip() == "10001"
        assert re.search(r"precompile: 1 artifact\(s\) ready \(1 built, 0 reused\)", first.logs()), first.logs()
        stop_seconds = first.stop()
        assert stop_seconds < STOP_LIMIT, f"docker stop took {stop_seconds:.1f} s:\n{first.logs()}"
        assert first.inspect("{{.State.ExitCode}}") == "0", first.logs()
        assert "received SIGTERM: stopping the server" in first.logs()
    finally:
        first.remove()
    second = Container(cpu.tag, cache_volume, env)
    try:
        second.wait_healthy()
        logs = second.logs()
        assert re.search(r"precompile: 1 artifact\(s\) ready \(0 built, 1 reused\)", logs), logs
        assert re.search(r"optimized graph loaded from cache /cache/ttspilot/", logs), logs
    finally:
        second.remove()
    size = int(docker_env.docker("image", "inspect", "-f", "{{.Size}}", cpu.tag).stdout)
    say(request.config, f"docker: cpu image {size / 1e6:.0f} MB (goal < {IMAGE_SIZE_GOAL / 1e9:.1f} GB) on the "
        f"Debian base; this test waited {cpu.seconds:.0f} s for its build; docker stop took {stop_seconds:.1f} s")
    assert size < IMAGE_SIZE_GOAL


def test_images_hold_no_tests_git_or_pip_cache_and_run_as_non_root(images):
    for build in images:
        assert docker_env.docker("image", "inspect", "-f", "{{.Config.User}}", build.tag).stdout.strip() == "10001:10001"
        found = docker_env.docker(
            "run", "--rm", "--user", "0", "--entrypoint", "find", build.tag, "/", "-xdev", "(", "-name", ".git",
            "-o", "-path", "*/.cache/pip", "-o", "-path", "/opt/ttspilot/tests", "-o", "-path", "/opt/ttspilot/*/conftest.py", ")",
            "-print").stdout
        assert found == "", found
        assert docker_env.docker("run", "--rm", "--entrypoint", "ls", build.tag, "/opt/ttspilot/fastapi_server.py")


def test_gpu_target_plans_from_its_entry_point(images):
    """The gpu target's steps, on the Debian base: its launcher plans (the CPU tier here, no GPU is passed in)."""
    _, gpu = images
    plan = docker_env.docker("run", "--rm", gpu.tag, "--dry_run", timeout=120)
    assert "candidates, in order:" in plan.stdout and "--host 0.0.0.0" in plan.stdout, plan.stdout
    nvidia = docker_env.docker("image", "inspect", "-f", "{{json .Config.Env}}", gpu.tag).stdout
    assert "NVIDIA_VISIBLE_DEVICES=all" in nvidia


def test_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), "--no-color", str(docker_env.DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_services_build_the_dockerfile_targets_with_the_cache_volume():
    """compose.yaml cannot be run here (no Compose plugin): its services must name real targets and the volume."""
    compose = yaml.safe_load((docker_env.REPO_ROOT / "compose.yaml").read_text())
    stages = re.findall(r"^FROM \S+ AS (\w+)$", docker_env.DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert {name: service["build"]["target"] for name, service in compose["services"].items()} == \
        {"cpu": "cpu", "gpu": "gpu"} and stages == ["cpu", "gpu"]
    for service in compose["services"].values():
        assert (docker_env.REPO_ROOT / service["build"]["dockerfile"]) == docker_env.DOCKERFILE
        assert "ttspilot-cache:/cache" in service["volumes"] and "ttspilot-cache" in compose["volumes"]
    devices = compose["services"]["gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]
