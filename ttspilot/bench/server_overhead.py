"""What the server costs over the raw engine, measured side by side in one process and one run.

    python -m ttspilot.bench.server_overhead [--repeats 5]
    python -m ttspilot.bench.server_overhead --model_dir DIR --cosyvoice_root TREE [--repeats 15]

Prints, for ~40/200/1,200-character texts: raw engine RTF vs server whole-response RTF
(client wall time), streaming time to first audio, split vs one-model-call RTF for the
long text, and server RSS over 20 long requests (server in its own process). With a CosyVoice
`--model_dir`, the server against upstream's own model object instead (cosyvoice_overhead.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import psutil
import uvicorn
from tabulate import tabulate

from ttspilot.bench.texts import ENGLISH
from ttspilot.config import ServerSettings, config_from_flags
from ttspilot.engines import load_engine
from ttspilot.engines.base import Engine
from ttspilot.launcher.child import ServerChild
from ttspilot.server.app import create_app
from ttspilot.server.readiness import wait_until_ready


def median_of(repeats: int, measure: Callable[..., float], *args: object) -> float:
    return statistics.median(measure(*args) for _ in range(repeats))


def raw_rtf(engine: Engine, text: str) -> float:
    started = time.perf_counter()
    audio = np.concatenate(list(engine.synthesize(text, engine.default_voice)))
    return (time.perf_counter() - started) / (len(audio) / engine.sample_rate)


def raw_first_chunk_seconds(engine: Engine, text: str) -> float:
    started = time.perf_counter()
    chunks = engine.synthesize(text, engine.default_voice)
    next(chunks)
    elapsed = time.perf_counter() - started
    chunks.close()
    return elapsed


def one_call_rtf(engine: Engine, text: str) -> float:
    """The whole text as one model call: what a server without splitting would do."""
    started = time.perf_counter()
    audio = np.concatenate(list(engine.synthesize(text, engine.default_voice, split_sentences=False)))
    return (time.perf_counter() - started) / (len(audio) / engine.sample_rate)


def server_rtf(client: httpx.Client, text: str, voice: str | None = None) -> float:
    """Client wall time for the whole WAV over the audio's length (POST form fields; `None`: the default voice)."""
    started = time.perf_counter()
    response = client.post("/inference_sft", data={"tts_text": text, **({"spk_id": voice} if voice else {})})
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed / float(response.headers["x-audio-duration"])


def server_split_rtf(client: httpx.Client, text: str) -> float:
    response = client.get("/inference_sft", params={"tts_text": text})
    return float(response.headers["x-rtf"])


def server_first_audio_seconds(client: httpx.Client, text: str, voice: str | None = None) -> float:
    """Time to the first byte of streamed raw PCM; the rest is read too, so the server is idle afterwards."""
    fields = {"tts_text": text, "stream": "true", "format": "pcm", **({"spk_id": voice} if voice else {})}
    started = time.perf_counter()
    first = None
    with client.stream("POST", "/inference_sft", data=fields) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            if chunk and first is None:
                first = time.perf_counter() - started
    if first is None:
        raise RuntimeError("stream ended without audio")
    return first


class InProcessServer:
    """uvicorn in a thread around an engine we also call directly."""

    def __init__(self, engine: Engine, port: int):
        self.server = uvicorn.Server(uvicorn.Config(create_app(engine, ServerSettings()), port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> str:
        self.thread.start()
        if (reason := wait_until_ready(self.url, 90)) is not None:
            raise RuntimeError(f"server at {self.url}: {reason}")
        return self.url

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def rss_over_requests(text: str, requests: int = 20) -> list[float]:
    """RSS (MB) of a separate server process after each long request."""
    child = ServerChild.on_free_port(["--log_level", "warning"])
    child.start()
    try:
        if (reason := child.wait_ready(90)) is not None:
            raise RuntimeError(f"server did not start: {reason}")
        rss = []
        with httpx.Client(base_url=child.url, timeout=120) as client:
            for _ in range(requests):
                client.get("/inference_sft", params={"tts_text": text}).raise_for_status()
                rss.append(psutil.Process(child.process.pid).memory_info().rss / 2**20)
        return rss
    finally:
        child.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, help="rounds per measure (default: 5, CosyVoice 15)")
    parser.add_argument("--port", type=int, default=9290)
    parser.add_argument("--trt_concurrent", type=int, help="sessions in the pool (default: the cpu tier's)")
    cosyvoice = parser.add_argument_group("CosyVoice (run with the CosyVoice environment's python)")
    cosyvoice.add_argument("--model_dir", type=Path, help="a CosyVoice folder: compare with upstream's own calls")
    cosyvoice.add_argument("--cosyvoice_root", type=Path, help="the official checkout both sides load")
    cosyvoice.add_argument("--text", default=ENGLISH["medium"], help="what both sides say (default: ~160 characters)")
    cosyvoice.add_argument("--warmup", type=int, default=3, help="unmeasured rounds first (upstream's first calls are slow)")
    cosyvoice.add_argument("--threads", type=int, help="torch threads on both sides (default: torch's own)")
    cosyvoice.add_argument("--json", type=Path, help="also write the report, every round's figures, here")
    args = parser.parse_args(argv)
    if args.model_dir is not None:
        from ttspilot.bench.cosyvoice_overhead import run

        if args.cosyvoice_root is None:
            parser.error("--model_dir needs --cosyvoice_root")
        if args.repeats is not None and args.repeats < 2:
            parser.error("--repeats: at least 2 rounds for quartiles")
        return run(args.model_dir, args.cosyvoice_root, args.text, args.repeats or 15, args.warmup, args.threads,
                   args.json)
    args.repeats = args.repeats or 5

    config = config_from_flags("cpu")
    if args.trt_concurrent:
        config = config_from_flags(device="cpu", trt_concurrent=args.trt_concurrent)
    engine = load_engine(None, config)
    rows = []
    with InProcessServer(engine, args.port) as url, httpx.Client(base_url=url, timeout=120) as client:
        for name, text in ENGLISH.items():
            raw_rtf(engine, text), server_rtf(client, text)  # warm both paths for this length
            raw = median_of(args.repeats, raw_rtf, engine, text)
            served = median_of(args.repeats, server_rtf, client, text)
            rows.append([f"{name} ({len(text)} ch)", f"{raw:.4f}", f"{served:.4f}", f"{served / raw:.2f}", "<= 1.10"])
        long_text = ENGLISH["long"]
        first_raw = median_of(args.repeats, raw_first_chunk_seconds, engine, long_text)
        first_served = median_of(args.repeats, server_first_audio_seconds, client, long_text)
        one_call = median_of(args.repeats, one_call_rtf, engine, long_text)
        split = median_of(args.repeats, server_split_rtf, client, long_text)
    print(tabulate(rows, ["text", "raw engine RTF", "server RTF", "ratio", "goal"], tablefmt="github"))
    print()
    print(tabulate(
        [
            ["stream first audio, long text (s)", f"{first_served:.3f}", "<= 0.35"],
            ["  / raw engine first sentence", f"{first_served / first_raw:.2f}", "<= 1.2"],
            ["long text RTF: split / one model call", f"{split:.4f} / {one_call:.4f} = {split / one_call:.2f}", "<= 0.75"],
        ],
        ["measure", "value", "goal"], tablefmt="github",
    ))
    rss = rss_over_requests(ENGLISH["long"])
    growth = (rss[19] - rss[9]) / rss[9]
    print()
    print(f"server RSS after request 10: {rss[9]:.0f} MB, after 20: {rss[19]:.0f} MB, growth {growth:+.1%} "
          "(goal: < 500 MB, growth <= 5%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
