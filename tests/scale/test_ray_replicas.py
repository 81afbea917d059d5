"""Real Ray Serve on this machine (num_cpus=2, two logical GPUs): replicas of the cpu tier behind Ray's proxy.

One local Ray instance per module (starting one takes about 10 s). The first deployment puts two replicas on the two
logical GPUs with the NVML fake at the hardware boundary; the tests then kill one of them under load and, on a fresh
deployment, autoscale from 1 to 2 and back. Ray's placement is arithmetic only here: the replicas run on the CPU.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import numpy as np
import pytest
import ray
import websockets
from ray import serve

from tests.fakes_nvml import FakeGpu, FakeNvml
from tests.support import assert_speech, decode_wav, say
from ttspilot.launcher.child import REPO_ROOT, free_loopback_port
from ttspilot.scale.deployment import REPLICA_HEADER, SERVE_NAMESPACE, TtsReplica
from ttspilot.scale.serve_app import ScaleArgs
from ttspilot.scale.serve_config import APP_NAME

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEXT = "Every replica speaks with the same voice, wherever Ray puts it."
LONG = " ".join(f"Part {i} of a longer reading keeps the stream busy for a while." for i in range(10))
GPUS = [FakeGpu("NVIDIA L4", 24, 22, (8, 9)), FakeGpu("Tesla T4", 16, 15, (7, 5))]


@dataclass(frozen=True)
class Cluster:
    url: str
    cache: Path  # the replicas' XDG_CACHE_HOME: compiled caches they share


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cache = tmp_path_factory.mktemp("replica-cache")
    env = {"PYTHONPATH": str(REPO_ROOT), "XDG_CACHE_HOME": str(cache)}
    try:
        ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    except Exception as error:  # only a Ray that cannot start here skips; anything after this fails
        reason = f"Ray cannot start on this machine, Ray Serve tests SKIPPED: {type(error).__name__}: {error}"
        say(request.config, f"WARNING: {reason}")
        pytest.skip(reason)
    port = free_loopback_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield Cluster(f"http://127.0.0.1:{port}", cache)
    finally:
        serve.shutdown()
        ray.shutdown()


def deploy(args: ScaleArgs, nvml: FakeNvml | None = None) -> None:
    serve.delete(APP_NAME)
    options = replace(args.replica_options(), nvml=nvml)
    serve.run(TtsReplica.options(**args.deployment_options()).bind(options, args.health_check_period_s),
              name=APP_NAME, route_prefix="/")


def running_replicas() -> int:
    deployment = serve.status().applications[APP_NAME].deployments["ttspilot"]
    return deployment.replica_states.get("RUNNING", 0)


def wait_for(condition, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what} not within {timeout:g} s"
        time.sleep(0.25)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def two_gpu_replicas(cluster: Cluster) -> Cluster:
    deploy(ScaleArgs(replicas=2, gpus_per_replica=1, health_check_period_s=1), FakeNvml(GPUS))
    return cluster


def family_requests(client: httpx.Client) -> list[tuple[str, httpx.Response, np.ndarray, int]]:
    """One request of every HTTP family through the proxy; (name, response, audio, rate) each."""
    def pcm(body: bytes) -> np.ndarray:
        return np.frombuffer(body, dtype="<i2").astype(np.float32) / 32767

    calls = {
        "GET /inference_sft": lambda: client.get("/inference_sft", params={"tts_text": TEXT}),
        "POST /inference_sft": lambda: client.post("/inference_sft", data={"tts_text": TEXT}),
        "POST /v1/audio/speech": lambda: client.post("/v1/audio/speech", json={
            "model": "tts-1", "input": TEXT, "voice": "alloy", "response_format": "wav", "stream": False}),
        "POST /v1/tts": lambda: client.post("/v1/tts", json={"text": TEXT}),
        "POST /inference_zero_shot": lambda: client.post("/inference_zero_shot", data={"tts_text": TEXT}),
    }
    results = []
    for name, call in calls.items():
        response = call()
        if name == "POST /inference_zero_shot":  # Piper has no zero-shot: a clear 4xx through the proxy too
            assert response.status_code == 400, response.text
            continue
        assert response.status_code == 200, (name, response.text)
        audio, rate = decode_wav(response.content)
        results.append((name, response, audio, rate))
    for path, kwargs in (("/tts/stream", {"data": {"text": TEXT}}), ("/v1/tts/stream", {"json": {"text": TEXT}})):
        with client.stream("POST", path, **kwargs) as response:
            body = response.read()
        assert response.status_code == 200, path
        rate = int(response.headers["x-sample-rate"])
        audio = pcm(body) if path == "/tts/stream" else decode_wav(body)[0]
        results.append((f"POST {path}", response, audio, rate))
    return results


def test_two_replicas_serve_every_family_streaming_and_websocket_through_rays_proxy(two_gpu_replicas):
    url = two_gpu_replicas.url
    with httpx.Client(base_url=url, timeout=120) as client:
        with ThreadPoolExecutor(4) as pool:
            rounds = list(pool.map(lambda _: family_requests(client), range(4)))
        served = Counter()
        for name, response, audio, rate in (result for batch in rounds for result in batch):
            assert_speech(audio, rate, TEXT)
            assert len(response.headers.get_list("x-request-id")) == 1, name  # the proxy's, which the server kept
            served[response.headers[REPLICA_HEADER]] += 1
        assert len(served) == 2, f"requests per replica: {dict(served)}"

        # A long stream: audio arrives while the rest is still being made, through the proxy.
        started, arrivals, body = time.perf_counter(), [], b""
        with client.stream("POST", "/inference_sft", data={"tts_text": LONG, "format": "stream"}) as response:
            assert response.status_code == 200
            for chunk in response.iter_raw():
                arrivals.append(time.perf_counter() - started)
                body += chunk
        assert_speech(np.frombuffer(body, dtype="<i2").astype(np.float32) / 32767,
                      int(response.headers["x-sample-rate"]), LONG)
        assert arrivals[0] < 0.5 * arrivals[-1], f"first audio {arrivals[0]:.2f} s of {arrivals[-1]:.2f} s"

    async def conversation() -> list[dict]:
        async with websockets.connect(url.replace("http", "ws") + "/ws/tts") as socket:
            replies = []
            for text in (TEXT, "Second request on the same socket."):
                await socket.send(json.dumps({"text": text}))
                while (reply := json.loads(await socket.recv()))["type"] not in ("done", "error"):
                    replies.append(reply)
                replies.append(reply)
            return replies

    replies = asyncio.run(conversation())
    assert [reply["type"] for reply in replies].count("done") == 2
    first = replies[:next(i for i, reply in enumerate(replies) if reply["type"] == "done")]
    audio = b"".join(base64.b64decode(reply["data"]) for reply in first)
    assert_speech(np.frombuffer(audio, dtype="<i2").astype(np.float32) / 32767, first[0]["sample_rate"], TEXT)


def replica_infos(url: str) -> dict[str, dict]:
    """/performance_info of every replica (asked through the proxy until each has answered), by replica id."""
    infos: dict[str, dict] = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(60):
            response = client.get("/performance_info")
            infos[response.headers[REPLICA_HEADER]] = response.json()
            if len(infos) == 2:
                return infos
    raise AssertionError(f"only replicas {sorted(infos)} answered /performance_info")


def test_each_replica_plans_on_the_gpu_ray_gave_it_and_says_so(two_gpu_replicas):
    infos = replica_infos(two_gpu_replicas.url)
    by_gpu = {}
    for replica_id, info in infos.items():
        replica = info["replica"]
        assert replica["replica_id"] == replica_id and replica["tier"] == info["effective_config"]["tier"] == "cpu"
        assert info["effective_config"]["cpu_threads"] == 1  # the one CPU Ray reserved for it, not the node's cores
        (gpu_id,) = replica["gpu_ids"]
        assert replica["cuda_visible_devices"] == gpu_id  # Ray pinned it; the probe kept only that GPU
        gpu_lines = [line for line in replica["hardware"] if line.startswith("GPU ")]
        assert gpu_lines == [f"GPU {gpu_id}: {GPUS[int(gpu_id)].name}, " + gpu_lines[0].split(", ", 1)[1]]
        assert "onnxruntime has no CUDAExecutionProvider" in replica["chosen"]  # the real plan on this machine
        by_gpu[gpu_id] = info
    assert sorted(by_gpu) == ["0", "1"]

    # Both replicas opened the same compiled CPU graph from the shared cache: built once under the cache lock.
    caches = [info["effective_config"]["models"][0]["cache"] for info in infos.values()]
    assert sorted(cache["status"] for cache in caches) == ["built", "hit"]
    assert caches[0]["path"] == caches[1]["path"]
    assert Path(caches[0]["path"]).is_relative_to(two_gpu_replicas.cache)

    view = httpx.get(two_gpu_replicas.url + "/cluster_info", timeout=30).json()
    assert view["count"] == view["healthy"] == 2 and view["answered_by"] in infos
    assert {entry["replica_id"]: (entry["tier"], entry["gpu_ids"]) for entry in view["replicas"]} == {
        replica_id: ("cpu", info["replica"]["gpu_ids"]) for replica_id, info in infos.items()}


def test_a_killed_replica_is_replaced_and_only_its_requests_in_flight_fail(two_gpu_replicas):
    url = two_gpu_replicas.url
    victim = replica_infos(url)
    victim_id, victim_info = next(iter(victim.items()))
    outcomes: list[tuple[int | str, str]] = []  # status (or the client's error), and the body of a failure
    stop_at = time.monotonic() + 8

    def client_loop() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            while time.monotonic() < stop_at:
                try:
                    response = client.get("/inference_sft", params={"tts_text": TEXT})
                except httpx.HTTPError as error:
                    outcomes.append((type(error).__name__, str(error)))
                    continue
                outcomes.append((response.status_code, "" if response.status_code == 200 else response.text))
                if response.status_code == 200:
                    assert_speech(*decode_wav(response.content), TEXT)

    with ThreadPoolExecutor(4) as pool:
        loads = [pool.submit(client_loop) for _ in range(4)]
        time.sleep(3)
        ray.kill(ray.get_actor(victim_info["replica"]["actor_name"], namespace=SERVE_NAMESPACE), no_restart=True)
        for load in loads:
            load.result()
    failed = [outcome for outcome in outcomes if outcome[0] != 200]
    say_line = f"kill under load: {len(outcomes)} requests, failed {Counter(o[0] for o in failed)}"
    print(say_line)
    assert len(failed) <= 4, say_line  # at most the 4 clients' requests in flight on the victim
    # Ray's proxy answers a request whose replica died under it with a plain 500 (it keeps the cause in its log).
    assert all(outcome == (500, "Internal Server Error") for outcome in failed), failed
    assert sum(1 for status, _ in outcomes if status == 200) >= 10

    replaced_after = wait_for(lambda: running_replicas() == 2, 90, "a replacement replica")
    print(f"kill under load: replacement running {replaced_after:.1f} s after the load ended")
    replaced = replica_infos(url)
    assert victim_id not in replaced and len(replaced) == 2
    assert httpx.get(url + "/health", timeout=30).status_code == 200
    wait_for(lambda: httpx.get(url + "/cluster_info", timeout=30).json()["healthy"] == 2, 30, "two healthy replicas")


def test_autoscaling_goes_from_one_replica_to_two_under_load_and_back(cluster):
    deploy(ScaleArgs(min_replicas=1, max_replicas=2, target_ongoing_requests=1, health_check_period_s=2,
                     autoscaling={"upscale_delay_s": 0.5, "downscale_delay_s": 2, "look_back_period_s": 2,
                                  "metrics_interval_s": 0.5}))
    assert running_replicas() == 1
    stop = False

    def client_loop() -> int:
        done = 0
        with httpx.Client(base_url=cluster.url, timeout=60) as client:
            while not stop:
                response = client.post("/inference_sft", data={"tts_text": LONG, "format": "stream"})
                assert response.status_code == 200
                done += 1
        return done

    with ThreadPoolExecutor(4) as pool:
        loads = [pool.submit(client_loop) for _ in range(4)]
        try:
            up = wait_for(lambda: running_replicas() == 2, 60, "scaling up to 2 replicas")
        finally:
            stop = True
        assert sum(load.result() for load in loads) > 0
    down = wait_for(lambda: running_replicas() == 1, 60, "scaling back down to 1 replica")
    print(f"autoscaling: 1 -> 2 in {up:.1f} s under 4 streams, 2 -> 1 in {down:.1f} s after the load stopped")
