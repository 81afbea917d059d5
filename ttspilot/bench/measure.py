"""One configuration, measured in its own process: `python -m ttspilot.bench.measure SPEC RESULT`.

A fresh process per configuration keeps memory, ONNX Runtime arenas and GPU state from
leaking into the next one, and makes peak RSS mean "what this tier needs". Synthesis runs
through the server's own pipeline (splitting, worker pool sized by the tier), so RTF, time
to first audio and throughput are what a client of the server would see, minus HTTP.
Synthesis uses the engine's deterministic options (Piper: no noise) so the quality guard can
compare audio; an engine without them (CosyVoice samples its speech tokens) is recorded as such.
The engine is loaded with the same `LoadOptions` the server takes (CosyVoice: `--cosyvoice_root`).

With `shape_seconds` set the child measures a pool shape instead (`bench/shapes.py`): `STREAMS` streamed
requests of the built-in long text at once, each stream starting `STAGGER_S` after the previous one and
sending request after request until the time is up. A request still running then is cut after its first
audio, so every request gives a time to first audio and the run ends within one segment of the deadline;
throughput counts the audio the streams received. One client alone is measured on the same text first.

The parent reads progress from stdout, one line per step: `ttspilot-bench {"steps": N}`
first, then `ttspilot-bench {"step": "..."}`; everything else goes to stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import threading
import time
import uuid
from contextlib import aclosing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from ttspilot.bench.texts import builtin_texts, language_of
from ttspilot.canary import CANARY_TEXT
from ttspilot.config import OptimizationConfig, ServerSettings
from ttspilot.engines import load_engine
from ttspilot.engines.base import Engine, EngineInfo, EngineLoadError, LoadOptions
from ttspilot.pool_shape import STREAMS
from ttspilot.server.pipeline import SynthesisJob, SynthesisPipeline
from ttspilot.server.stats import StatsRecorder

PROGRESS_PREFIX = "ttspilot-bench "
STAGGER_S = 0.25  # between the starts of the concurrent streams of a shape measurement
SINGLE_REPEATS = 3  # one-client first audio of the long text, before the concurrent load


@dataclass(frozen=True)
class MeasureSpec:
    """What the parent asks one child to measure; travels as JSON."""

    label: str
    config: OptimizationConfig
    audio_dir: Path
    repeats: int = 5
    concurrency: tuple[int, ...] = (1, 2)
    throughput_seconds: float = 5.0
    texts: dict[str, str] | None = None  # None: the built-in set for the voice's language
    language: str = "auto"  # auto | en | zh, for the built-in set
    quick: bool = False  # built-in set: short and medium only
    model_dir: Path | None = None
    load: LoadOptions = LoadOptions()  # what the server would load the engine with besides folder and tier
    shape_seconds: float | None = None  # set: measure the pool shape under concurrent streams for this long

    def to_json(self) -> str:
        load = {name: str(value) if isinstance(value, Path) else value for name, value in asdict(self.load).items()}
        data = asdict(self) | {"audio_dir": str(self.audio_dir), "model_dir": self.model_dir and str(self.model_dir),
                               "load": load}
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> MeasureSpec:
        data = json.loads(text)
        return cls(**data | {
            "config": OptimizationConfig(**data["config"]),
            "audio_dir": Path(data["audio_dir"]),
            "concurrency": tuple(data["concurrency"]),
            "model_dir": data["model_dir"] and Path(data["model_dir"]),
            "load": load_options_from_dict(data["load"]),
        })


def load_options_from_dict(data: dict[str, Any]) -> LoadOptions:
    """Inverse of the JSON form in `MeasureSpec.to_json`: paths back to `Path`."""
    paths = {"cosyvoice_root", "voices_file"}
    return LoadOptions(**{name: Path(value) if name in paths and value is not None else value
                          for name, value in data.items()})


@dataclass
class StreamLoad:
    """A pool-shape measurement's raw figures (see the module docstring)."""

    first_audio_s: list[float]  # one per request of the concurrent load
    stall_s: list[float]  # one per request: silence a real-time listener heard after first audio
    audio_s: float  # audio the streams received
    wall_s: float  # from the first stream's start to the last one's end
    single_first_audio_s: list[float]  # one client alone, the same text


@dataclass
class Measurement:
    """What one child measured; `error` set means the engine would not load (the row is skipped)."""

    label: str
    tier: str
    error: str | None = None
    load_s: float | None = None
    rtf: dict[str, list[float]] = field(default_factory=dict)  # text name -> one RTF per repeat
    first_audio_s: dict[str, list[float]] = field(default_factory=dict)  # text name -> streamed TTFA per repeat
    streaming: bool = False  # the engine yields chunks inside a sentence: first audio is its first streamed chunk
    deterministic: bool = True  # the same text gives the same audio (the engine has deterministic options)
    throughput: dict[int, float] = field(default_factory=dict)  # clients -> audio seconds per wall second
    peak_rss_mb: float | None = None
    peak_gpu_mb: float | None = None
    sample_rate: int = 0
    texts: dict[str, str] = field(default_factory=dict)
    audio: dict[str, str] = field(default_factory=dict)  # text name -> float WAV of the deterministic output
    engine_info: EngineInfo | None = None  # None when the engine would not load
    streams: StreamLoad | None = None  # set by a pool-shape measurement (`MeasureSpec.shape_seconds`)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"engine_info": self.engine_info and self.engine_info.as_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        info = data.get("engine_info")
        return cls(**data | {
            "throughput": {int(k): v for k, v in data.get("throughput", {}).items()},
            "engine_info": info and EngineInfo.from_dict(info),
            "streams": data.get("streams") and StreamLoad(**data["streams"]),
        })


def peak_rss_mb() -> float:
    """This process's peak resident set size (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class GpuMemoryWatcher:
    """Peak GPU memory of this process, sampled through NVML in a thread; None where NVML is not usable.

    Per-process figures need the driver to show this PID (not always the case in containers);
    otherwise the growth of device memory in use since the watcher started is reported.
    """

    def __init__(self, interval_s: float = 0.05):
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._own_peak = 0
        self._device_peak_growth = 0
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GpuMemoryWatcher:
        try:
            import pynvml
        except ImportError:
            return self
        try:
            pynvml.nvmlInit()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except pynvml.NVMLError:  # no NVML library, no driver, no GPU: nothing to watch
            return self
        if handles:
            baseline = sum(pynvml.nvmlDeviceGetMemoryInfo(h).used for h in handles)
            self._thread = threading.Thread(target=self._sample, args=(pynvml, handles, baseline), daemon=True)
            self._thread.start()
        return self

    def _sample(self, nvml: Any, handles: list[Any], baseline: int) -> None:
        pid = os.getpid()
        while not self._stop.wait(self.interval_s):
            try:
                own = sum(
                    proc.usedGpuMemory or 0
                    for handle in handles
                    for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle)
                    if proc.pid == pid
                )
                used = sum(nvml.nvmlDeviceGetMemoryInfo(handle).used for handle in handles)
            except nvml.NVMLError:
                continue
            self._own_peak = max(self._own_peak, own)
            self._device_peak_growth = max(self._device_peak_growth, used - baseline)

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def peak_mb(self) -> float | None:
        if self._thread is None:
            return None
        return (self._own_peak or self._device_peak_growth) / 2**20


class Progress:
    """Step lines on stdout for the parent's progress bar."""

    @staticmethod
    def _send(message: dict[str, Any]) -> None:
        print(PROGRESS_PREFIX + json.dumps(message), flush=True)

    def total(self, steps: int) -> None:
        self._send({"steps": steps})

    def step(self, what: str) -> None:
        self._send({"step": what})


class _PipelineClient:
    """Requests to one SynthesisPipeline, as the server's routes make them (minus HTTP)."""

    def __init__(self, engine: Engine, clients: int):
        # admit every benchmark client at once, and never time out a slow configuration
        settings = ServerSettings(max_queue=max(clients, 1), request_timeout=3600.0)
        self.engine = engine
        self.pipeline = SynthesisPipeline(engine, settings, StatsRecorder())

    def job(self, text: str, stream: bool) -> SynthesisJob:
        return SynthesisJob(
            text, self.engine.default_voice, self.engine.sample_rate, stream=stream,
            engine_options=dict(self.engine.deterministic_options),
        )

    async def whole(self, text: str) -> tuple[np.ndarray, float]:
        """The audio and its RTF (wall time over audio time)."""
        job = self.job(text, stream=False)
        timing = self.pipeline.start(job, uuid.uuid4().hex, "benchmark")
        audio = await self.pipeline.whole(job, timing)
        return audio, timing.rtf if timing.rtf is not None else float("inf")

    async def first_audio(self, text: str) -> float:
        """Seconds until a streamed request yields its first chunk; the rest is cancelled."""
        job = self.job(text, stream=True)
        timing = self.pipeline.start(job, uuid.uuid4().hex, "benchmark")
        async with aclosing(self.pipeline.audio(job, timing)) as chunks:
            async for _ in chunks:
                break
        return timing.time_to_first_audio if timing.time_to_first_audio is not None else float("inf")

    async def throughput(self, texts: list[str], clients: int, seconds: float) -> float:
        """Audio seconds per wall second with `clients` closed-loop callers, cycling through `texts`."""
        deadline = time.perf_counter() + seconds

        async def caller(offset: int) -> float:
            produced, turn = 0.0, offset
            while time.perf_counter() < deadline:
                audio, _ = await self.whole(texts[turn % len(texts)])
                produced += len(audio) / self.engine.sample_rate
                turn += 1
            return produced

        started = time.perf_counter()
        produced = await asyncio.gather(*(caller(offset) for offset in range(clients)))
        return sum(produced) / (time.perf_counter() - started)

    async def streams(self, text: str, streams: int, seconds: float) -> tuple[list[float], list[float], float, float]:
        """First audio and stall per request, audio received and wall time of `streams` closed-loop streamed callers."""
        started = time.perf_counter()
        deadline = started + seconds

        async def caller(offset: int) -> tuple[list[float], list[float], float]:
            await asyncio.sleep(offset * STAGGER_S)
            first_audio, stalls, received = [], [], 0.0
            while True:  # at least one request per stream, however short the time
                job = self.job(text, stream=True)
                timing = self.pipeline.start(job, uuid.uuid4().hex, "benchmark")
                async with aclosing(self.pipeline.audio(job, timing)) as chunks:
                    async for chunk in chunks:
                        received += len(chunk) / job.sample_rate
                        if time.perf_counter() >= deadline:
                            break
                if timing.time_to_first_audio is not None:
                    first_audio.append(timing.time_to_first_audio)
                    stalls.append(timing.stall_seconds or 0.0)
                if time.perf_counter() >= deadline:
                    return first_audio, stalls, received

        done = await asyncio.gather(*(caller(offset) for offset in range(streams)))
        wall = time.perf_counter() - started
        return ([s for first_audio, _, _ in done for s in first_audio], [s for _, stalls, _ in done for s in stalls],
                sum(received for _, _, received in done), wall)


async def _run(engine: Engine, spec: MeasureSpec, texts: dict[str, str], result: Measurement, progress: Progress) -> None:
    bench = _PipelineClient(engine, max(spec.concurrency))
    await bench.whole(CANARY_TEXT)
    await bench.first_audio(CANARY_TEXT)
    progress.step("warm-up")
    spec.audio_dir.mkdir(parents=True, exist_ok=True)
    for repeat in range(spec.repeats):
        for name, text in texts.items():
            audio, rtf = await bench.whole(text)
            result.rtf.setdefault(name, []).append(rtf)
            result.first_audio_s.setdefault(name, []).append(await bench.first_audio(text))
            if repeat == 0:
                path = spec.audio_dir / f"{name}.wav"
                soundfile.write(path, audio, engine.sample_rate, subtype="FLOAT")  # float keeps NaN for the guard
                result.audio[name] = str(path)
            progress.step(f"{name} {repeat + 1}/{spec.repeats}")
    for clients in spec.concurrency:
        result.throughput[clients] = await bench.throughput(list(texts.values()), clients, spec.throughput_seconds)
        progress.step(f"throughput x{clients}")
    bench.pipeline.shutdown()


async def _run_streams(engine: Engine, spec: MeasureSpec, text: str, result: Measurement, progress: Progress) -> None:
    bench = _PipelineClient(engine, STREAMS)
    await asyncio.gather(*(bench.whole(CANARY_TEXT) for _ in range(STREAMS)))  # every pooled session once
    progress.step("warm-up")
    single = [await bench.first_audio(text) for _ in range(SINGLE_REPEATS)]
    progress.step("one client")
    first_audio, stalls, received, wall = await bench.streams(text, STREAMS, spec.shape_seconds or 0.0)
    result.streams = StreamLoad(first_audio, stalls, received, wall, single)
    progress.step(f"{STREAMS} streams")
    bench.pipeline.shutdown()


def measure(spec: MeasureSpec, progress: Progress) -> Measurement:
    """Load the engine for the spec's configuration and measure it; a load failure is a result, not a crash."""
    result = Measurement(spec.label, spec.config.tier)
    with GpuMemoryWatcher() as gpu:
        started = time.perf_counter()
        try:
            engine = load_engine(spec.model_dir, spec.config, spec.load)
        except EngineLoadError as error:
            result.error = error.reason
            return result
        result.load_s = time.perf_counter() - started
        voice = next(v for v in engine.voices() if v.id == engine.default_voice)
        language = language_of(voice.language) if spec.language == "auto" else spec.language
        if spec.shape_seconds is not None:
            texts = {"long": builtin_texts(language, quick=False)["long"]}
            progress.total(4)
        else:
            texts = spec.texts or builtin_texts(language, spec.quick)
            progress.total(2 + len(texts) * spec.repeats + len(spec.concurrency))
        progress.step("load")
        result.texts, result.sample_rate, result.engine_info = texts, engine.sample_rate, engine.info()
        result.streaming, result.deterministic = engine.capabilities.streaming, bool(engine.deterministic_options)
        if spec.shape_seconds is not None:
            asyncio.run(_run_streams(engine, spec, texts["long"], result, progress))
        else:
            asyncio.run(_run(engine, spec, texts, result, progress))
    result.peak_rss_mb, result.peak_gpu_mb = peak_rss_mb(), gpu.peak_mb
    return result


def main(argv: list[str] | None = None) -> int:
    import logging

    spec_path, result_path = argv if argv is not None else sys.argv[1:]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    spec = MeasureSpec.from_json(Path(spec_path).read_text())
    result = measure(spec, Progress())
    Path(result_path).write_text(json.dumps(result.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
