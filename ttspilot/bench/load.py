"""Server mode: N closed-loop clients drive a running server for a bounded time.

This is how an operator sizes concurrency: each client sends the next request as soon as
the last one ends, for `duration_s`; requests still in flight then finish (each bounded by
`timeout_s`), so a run always stops by itself. Client i starts `i x stagger_s` after the first,
so arrivals do not line up. Reported: requests/s, audio seconds per second, latency
p50/p90/p99, time to first audio and stall for streamed requests, and errors by kind. Stall is
what a real-time player fed by the received bytes would have been silent after the first
audio (`ttspilot.playback`, the model the server schedules and reports by).

API families: `sft` (GET /inference_sft), `openai` (POST /v1/audio/speech) and `piper`
(piper's own `python -m piper.http_server`: POST /synthesize with {"text": ...} -> WAV, no
streaming), so ttspilot and the model's own server can be compared on the same text.
"""

from __future__ import annotations

import io
import threading
import time
import wave
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import httpx
from tqdm import tqdm

from ttspilot.playback import Playback
from ttspilot.progress import progress_bar
from ttspilot.server.stats import percentiles

PCM_BYTES_PER_SAMPLE = 2  # s16le mono
OPENAI_PCM_RATE = 24000  # OpenAI's raw PCM is 24 kHz; used when the server does not say


@dataclass(frozen=True)
class LoadSpec:
    url: str
    api: str  # sft | openai | piper
    text: str
    clients: int
    duration_s: float
    stream: bool = False
    timeout_s: float = 120.0
    stagger_s: float = 0.0  # client i starts i x stagger_s after client 0


@dataclass(frozen=True)
class RequestResult:
    latency_s: float
    audio_s: float = 0.0
    first_audio_s: float | None = None  # streamed requests only
    stall_s: float | None = None  # streamed requests only: silence of a real-time player after first audio
    error: str | None = None  # "HTTP 503", "ReadTimeout", "empty audio"


@dataclass(frozen=True)
class LoadResult:
    spec: LoadSpec
    elapsed_s: float
    results: list[RequestResult] = field(default_factory=list)

    @property
    def ok(self) -> list[RequestResult]:
        return [r for r in self.results if r.error is None]

    @property
    def errors(self) -> dict[str, int]:
        return dict(Counter(r.error for r in self.results if r.error is not None))

    def summary(self) -> dict[str, Any]:
        """The figures an operator sizes concurrency with; latencies and TTFA over successful requests."""
        ok = self.ok
        latency = percentiles([r.latency_s for r in ok]) or {}
        first_audio = percentiles([r.first_audio_s for r in ok if r.first_audio_s is not None]) or {}
        stalls = [r.stall_s for r in ok if r.stall_s is not None]
        stall = percentiles(stalls) or {}
        return {
            "api": self.spec.api, "clients": self.spec.clients, "stream": self.spec.stream,
            "text_chars": len(self.spec.text), "requests": len(ok), "errors": sum(self.errors.values()),
            "error_kinds": self.errors, "elapsed_s": self.elapsed_s,
            "requests_per_s": len(ok) / self.elapsed_s, "audio_s_per_s": sum(r.audio_s for r in ok) / self.elapsed_s,
            "latency_p50_s": latency.get("p50"), "latency_p90_s": latency.get("p90"),
            "latency_p99_s": latency.get("p99"),
            "first_audio_p50_s": first_audio.get("p50"), "first_audio_p90_s": first_audio.get("p90"),
            "first_audio_p95_s": first_audio.get("p95"),
            "stall_p50_s": stall.get("p50"), "stall_p95_s": stall.get("p95"),
            "stall_max_s": max(stalls) if stalls else None, "streams_stalled": sum(s > 0 for s in stalls),
        }


def wav_seconds(body: bytes) -> float:
    with wave.open(io.BytesIO(body)) as wav:
        return wav.getnframes() / wav.getframerate()


def pcm_seconds(size: int, rate: int) -> float:
    return size / PCM_BYTES_PER_SAMPLE / rate


def build_request(client: httpx.Client, spec: LoadSpec) -> httpx.Request:
    """The request for one synthesis in the spec's API family (streamed ones ask for raw PCM)."""
    if spec.api == "sft":
        params = {"tts_text": spec.text, "format": "stream" if spec.stream else "wav"}
        return client.build_request("GET", "/inference_sft", params=params)
    if spec.api == "openai":
        body = {"model": "tts-1", "input": spec.text, "voice": "alloy",
                "response_format": "pcm" if spec.stream else "wav", "stream": spec.stream}
        return client.build_request("POST", "/v1/audio/speech", json=body)
    if spec.api == "piper":
        if spec.stream:
            raise ValueError("piper's http_server has no streaming; drop --stream for --api piper")
        return client.build_request("POST", "/synthesize", json={"text": spec.text})
    raise ValueError(f"unknown api {spec.api!r}: choose sft, openai or piper")


def one_request(client: httpx.Client, spec: LoadSpec) -> RequestResult:
    """Send one request and read the whole body; a streamed one feeds a real-time player as bytes arrive."""
    started = time.perf_counter()
    playback = Playback()
    body = bytearray()
    try:
        response = client.send(build_request(client, spec), stream=True)
        try:
            if response.status_code != 200:
                return RequestResult(time.perf_counter() - started, error=f"HTTP {response.status_code}")
            rate = int(response.headers.get("x-sample-rate", OPENAI_PCM_RATE))
            for chunk in response.iter_bytes():
                if chunk and spec.stream:
                    playback.feed(time.perf_counter(), pcm_seconds(len(chunk), rate))
                body += chunk
        finally:
            response.close()
    except httpx.HTTPError as error:
        return RequestResult(time.perf_counter() - started, error=type(error).__name__)
    latency = time.perf_counter() - started
    try:
        audio_s = pcm_seconds(len(body), rate) if spec.stream else wav_seconds(bytes(body))
    except (wave.Error, EOFError):
        return RequestResult(latency, error="not a WAV body")
    if audio_s <= 0:
        return RequestResult(latency, error="empty audio")
    if not spec.stream or playback.started is None:
        return RequestResult(latency, audio_s)
    return RequestResult(latency, audio_s, playback.started - started, playback.stall_seconds)


def run_load(spec: LoadSpec, on_tick: Callable[[float], None] | None = None) -> LoadResult:
    """`spec.clients` closed-loop clients for `spec.duration_s` after one untimed warm-up request."""
    limits = httpx.Limits(max_connections=spec.clients + 1)
    with httpx.Client(base_url=spec.url, timeout=spec.timeout_s, limits=limits) as client:
        warm_up = one_request(client, spec)
        if warm_up.error is not None:
            raise RuntimeError(f"{spec.url}: warm-up request failed ({warm_up.error}); check the URL and --api {spec.api}")
        results: list[RequestResult] = []
        lock = threading.Lock()
        started = time.perf_counter()
        deadline = started + spec.duration_s

        def loop(client_number: int) -> None:
            time.sleep(client_number * spec.stagger_s)
            while time.perf_counter() < deadline:
                result = one_request(client, spec)
                with lock:
                    results.append(result)

        threads = [threading.Thread(target=loop, args=(number,), daemon=True) for number in range(spec.clients)]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            if on_tick is not None:
                on_tick(min(time.perf_counter() - started, spec.duration_s))
            time.sleep(0.2)
        return LoadResult(spec, time.perf_counter() - started, results)


def run_levels(base: LoadSpec, levels: list[int]) -> list[LoadResult]:
    """One run per client count, under one progress bar of the bounded run time."""
    outcomes = []
    with progress_bar(total=round(base.duration_s * len(levels)), unit="s", desc=f"{base.api} load") as bar:
        for number, clients in enumerate(levels):
            bar.set_postfix_str(f"{clients} client(s)")
            outcomes.append(run_load(replace(base, clients=clients), partial(_show, bar, number * base.duration_s)))
    return outcomes


def _show(bar: tqdm, done_s: float, elapsed_s: float) -> None:
    bar.n = round(done_s + elapsed_s)
    bar.refresh()
