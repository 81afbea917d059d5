"""gRPC beside HTTP on one server, one request at a time: first audio and whole-request latency, medians of rounds.

    python -m ttspilot.bench.grpc_vs_http --text medium --rounds 15 [--server_flags "--tier cpu"]

One fastapi_server.py with --grpc_port, started here on loopback. Each round asks the same text once in
each way, in an order that rotates per round: HTTP /inference_sft streamed raw PCM (format=stream) and as a
whole WAV; gRPC ttspilot.v1.Speech streamed PCM and a whole WAV; upstream's cosyvoice.CosyVoice/Inference
(sft, streamed PCM). Timed at the client over one kept-alive connection per protocol: the first audio bytes
and the last byte. The ratios are each gRPC way's median over HTTP's of the same kind (streamed, whole).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pandas as pd
from tabulate import tabulate

from ttspilot.bench.report import write_files
from ttspilot.bench.side_by_side import Target, running
from ttspilot.bench.texts import ENGLISH
from ttspilot.launcher.child import REPO_ROOT, free_loopback_port
from ttspilot.server.grpc.protos import cosyvoice_pb2, cosyvoice_pb2_grpc, speech_pb2, speech_pb2_grpc

Timed = tuple[float, float]  # (first audio, last byte) in seconds from the request
Way = Callable[[str], Timed]


def _timed(pieces: Any, started: float) -> Timed:
    """Read every piece; when the first non-empty one and the last arrived."""
    first = None
    for piece in pieces:
        if first is None and piece:
            first = time.perf_counter() - started
    if first is None:
        raise RuntimeError("no audio came back")
    return first, time.perf_counter() - started


def ways(http: httpx.Client, channel: grpc.Channel) -> dict[str, tuple[str, Way]]:
    """name -> (kind, way): the ways one text is asked for."""
    speech = speech_pb2_grpc.SpeechStub(channel)
    upstream = cosyvoice_pb2_grpc.CosyVoiceStub(channel)

    def http_way(form: dict[str, str]) -> Way:
        def ask(text: str) -> Timed:
            started = time.perf_counter()
            with http.stream("POST", "/inference_sft", data={"tts_text": text, **form}) as response:
                response.raise_for_status()
                return _timed(response.iter_raw(), started)
        return ask

    def speech_way(**fields: Any) -> Way:
        def ask(text: str) -> Timed:
            started = time.perf_counter()
            call = speech.Synthesize(speech_pb2.SynthesizeRequest(text=text, **fields), timeout=300)
            return _timed((m.audio.data for m in call if m.HasField("audio")), started)
        return ask

    def upstream_way(text: str) -> Timed:
        started = time.perf_counter()
        call = upstream.Inference(cosyvoice_pb2.Request(sft_request=cosyvoice_pb2.sftRequest(tts_text=text)),
                                  timeout=300)
        return _timed((response.tts_audio for response in call), started)

    return {
        "HTTP /inference_sft stream": ("streamed", http_way({"format": "stream"})),
        "gRPC Speech stream": ("streamed", speech_way(stream=True, format="pcm")),
        "gRPC CosyVoice/Inference": ("streamed", upstream_way),
        "HTTP /inference_sft wav": ("whole", http_way({"format": "wav"})),
        "gRPC Speech wav": ("whole", speech_way(stream=False, format="wav")),
    }


def compare(server_flags: list[str], text: str, rounds: int, log_dir: Path) -> list[dict[str, Any]]:
    grpc_port = free_loopback_port()
    target = Target("ttspilot", (sys.executable, str(REPO_ROOT / "fastapi_server.py"), "--grpc_port", str(grpc_port),
                                 *server_flags), "sft", "/health")
    timings: dict[str, list[Timed]] = {}
    with running(target, log_dir) as url, httpx.Client(base_url=url, timeout=300) as http, \
            grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        asked = ways(http, channel)
        for _, way in asked.values():  # warm every path (connections, caches) before measuring
            way(text)
        names = list(asked)
        for number in range(rounds):
            for name in names[number % len(names):] + names[:number % len(names)]:
                timings.setdefault(name, []).append(asked[name][1](text))
            print(f"round {number + 1}/{rounds} done", file=sys.stderr)
    return rows_for({name: kind for name, (kind, _) in asked.items()}, timings)


def rows_for(kinds: dict[str, str], timings: dict[str, list[Timed]]) -> list[dict[str, Any]]:
    """Medians per way; each way's ratio to the HTTP way of its kind."""
    medians = {name: (statistics.median(t[0] for t in runs), statistics.median(t[1] for t in runs))
               for name, runs in timings.items()}
    http = {kinds[name]: medians[name] for name in medians if name.startswith("HTTP")}
    return [{
        "way": name, "kind": kinds[name], "rounds": len(timings[name]),
        "first_audio_p50_s": round(first, 4), "whole_request_p50_s": round(last, 4),
        "first_audio_vs_http": round(first / http[kinds[name]][0], 3),
        "whole_request_vs_http": round(last / http[kinds[name]][1], 3),
    } for name, (first, last) in medians.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", choices=list(ENGLISH), default="medium")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--server_flags", default="", help="more fastapi_server.py flags, one string")
    parser.add_argument("--output_dir", type=Path, default=Path("benchmarks") / time.strftime("grpc-vs-http-%Y%m%d-%H%M%S"))
    args = parser.parse_args(argv)
    try:
        rows = compare(shlex.split(args.server_flags), ENGLISH[args.text], args.rounds, args.output_dir / "logs")
    except (RuntimeError, grpc.RpcError, httpx.HTTPError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    settings = {"text": args.text, "text_chars": len(ENGLISH[args.text]), "rounds": args.rounds,
                "server_flags": args.server_flags}
    files = write_files(pd.DataFrame.from_records(rows), args.output_dir, "grpc_vs_http", settings)
    print(tabulate(rows, headers="keys", floatfmt=".4g"))
    print("\n".join(f"wrote {path}" for path in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
