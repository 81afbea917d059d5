"""What our server costs over upstream's own CosyVoice model object, side by side in one run.

    python -m ttspilot.bench.server_overhead --model_dir DIR --cosyvoice_root TREE [--repeats 15] [--json FILE]

Run with the CosyVoice environment's python. This process loads the folder through upstream's
`AutoModel` (or the version's class) and calls `inference_sft` itself ("direct"); the server is
fastapi_server.py on the same folder and tree, `cpu` tier, in its own process. Every round makes
one call of each side and kind (whole, streamed), one after the other, the order rotated every
round; no side runs while another does, and all use the same torch thread count. A random-weight
model's audio length differs per call, so the figures are per-call RTFs and first-audio times,
reported as medians with their quartiles.

The overhead is measured against the direct call made from a worker thread: a server's event loop
owns its main thread, so every server runs the model on another one (upstream's own FastAPI server
too: Starlette iterates its generator in a thread pool). The same call from the main thread is
shown beside it. Three sides in a rotating order: with two sides swapped every round the server
came out 20 % slower here, an artefact of the order (see OPTIMIZATION.md §7).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from tabulate import tabulate

from ttspilot.bench.server_overhead import server_first_audio_seconds, server_rtf
from ttspilot.engines.cosyvoice.engine import CLASS_NAMES, model_version
from ttspilot.engines.cosyvoice.upstream import upstream_on_path
from ttspilot.launcher.child import ServerChild

WHOLE_GOAL = 1.10  # server RTF / direct RTF, whole responses (issue 14)
FIRST_AUDIO_GOAL = 1.2  # server first audio / upstream's first chunk, streamed
QUIET_PROGRESS = {"TQDM_DISABLE": "1"}  # upstream's per-call progress bars, off on both sides alike


@dataclass(frozen=True)
class Spread:
    """Median and quartiles of one measure over the rounds."""

    median: float
    q1: float
    q3: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
        return cls(median, q1, q3, tuple(values))


class DirectModel:
    """Upstream's own model object, called the way upstream's examples call it."""

    def __init__(self, model_dir: Path, cosyvoice_root: Path):
        upstream_on_path(cosyvoice_root)
        from cosyvoice.cli import cosyvoice as cli

        version = model_version(model_dir)
        if version is None:
            raise SystemExit(f"{model_dir} is not a CosyVoice folder (no cosyvoice*.yaml)")
        build = getattr(cli, "AutoModel", None) or getattr(cli, CLASS_NAMES[version])
        self.model = build(model_dir=str(model_dir))
        logging.getLogger().setLevel(logging.WARNING)  # upstream's import sets the root logger to DEBUG
        self.speaker = self.model.list_available_spks()[0]
        # v2/v3 grow token_hop_len during a stream and keep it; the server resets it before each
        # stream (docs/architecture.md, "Engines"), so every direct stream starts from it too.
        self.initial_hop = getattr(self.model.model, "token_hop_len", None)

    def upstream_segments(self, text: str) -> int:
        """Model calls upstream's own text splitting makes of `text`."""
        return len(self.model.frontend.text_normalize(text, split=True))

    def whole_rtf(self, text: str) -> float:
        started = time.perf_counter()
        samples = sum(out["tts_speech"].shape[1] for out in self.model.inference_sft(text, self.speaker, stream=False))
        return (time.perf_counter() - started) / (samples / self.model.sample_rate)

    def first_audio_seconds(self, text: str) -> float:
        """Time to upstream's first streamed chunk; the rest is drained so its LLM thread is done afterwards."""
        if self.initial_hop is not None:
            self.model.model.token_hop_len = self.initial_hop
        started = time.perf_counter()
        outputs = self.model.inference_sft(text, self.speaker, stream=True)
        next(outputs)
        first = time.perf_counter() - started
        for _ in outputs:
            pass
        return first


def server_segments(client: httpx.Client, text: str, voice: str) -> int:
    """Model calls our server's splitter made for one whole request of `text`."""
    response = client.post("/inference_sft", data={"tts_text": text, "spk_id": voice})
    response.raise_for_status()
    info = client.get("/performance_info", params={"request_id": response.headers["x-request-id"]}).json()
    return int(info["request"]["segments"])


SIDES = ("direct", "direct_main_thread", "server")


def alternate(rounds: int, sides: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """`rounds` results of each side, taken in turns; the side that goes first rotates every round."""
    names = list(sides)
    results: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(sides[name]())
    return results


def measure(model_dir: Path, cosyvoice_root: Path, text: str, rounds: int, warmup: int, threads: int | None
            ) -> dict[str, Any]:
    """Load both sides, warm both, then `rounds` alternating rounds of whole and streamed calls.

    `threads`: torch threads on both sides; None keeps torch's own count (one per core).
    """
    load_before = os.getloadavg()[0]
    os.environ.update(QUIET_PROGRESS)  # read when tqdm is imported, which torch does
    import torch

    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    direct = DirectModel(model_dir, cosyvoice_root)
    server_args = ["--model_dir", str(model_dir), "--cosyvoice_root", str(cosyvoice_root), "--tier", "cpu",
                   "--no_canary", "--log_level", "warning"]  # noise from random weights may fail the canary
    child = ServerChild.on_free_port(server_args, env={**QUIET_PROGRESS, "OMP_NUM_THREADS": str(threads)})
    child.start()
    try:
        if (reason := child.wait_ready(300)) is not None:
            raise RuntimeError(f"server did not start: {reason}")
        with httpx.Client(base_url=child.url, timeout=300) as client, ThreadPoolExecutor(1) as worker:
            whole = {"direct": lambda: worker.submit(direct.whole_rtf, text).result(),
                     "direct_main_thread": lambda: direct.whole_rtf(text),
                     "server": lambda: server_rtf(client, text, direct.speaker)}
            first = {"direct": lambda: worker.submit(direct.first_audio_seconds, text).result(),
                     "direct_main_thread": lambda: direct.first_audio_seconds(text),
                     "server": lambda: server_first_audio_seconds(client, text, direct.speaker)}
            alternate(warmup, whole)
            alternate(warmup, first)
            wholes, firsts = alternate(rounds, whole), alternate(rounds, first)
            segments = {"direct": direct.upstream_segments(text), "server": server_segments(client, text, direct.speaker)}
    finally:
        child.stop()
    sides = {side: {"whole_rtf": Spread.of(wholes[side]), "first_audio_s": Spread.of(firsts[side])} for side in SIDES}
    return {
        "model_dir": str(model_dir),
        "model_class": type(direct.model).__name__,
        "cosyvoice_root": str(cosyvoice_root),
        "text": text,
        "speaker": direct.speaker,
        "rounds": rounds,
        "warmup_rounds": warmup,
        "threads": threads,
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},  # 1-minute, of the whole machine
        "model_calls": segments,
        "sides": {side: {name: asdict(spread) for name, spread in measures.items()} for side, measures in sides.items()},
        "ratios": {
            "whole_rtf": sides["server"]["whole_rtf"].median / sides["direct"]["whole_rtf"].median,
            "first_audio": sides["server"]["first_audio_s"].median / sides["direct"]["first_audio_s"].median,
            "whole_rtf_vs_main_thread":
                sides["server"]["whole_rtf"].median / sides["direct_main_thread"]["whole_rtf"].median,
            "first_audio_vs_main_thread":
                sides["server"]["first_audio_s"].median / sides["direct_main_thread"]["first_audio_s"].median,
        },
    }


def table(report: dict[str, Any]) -> str:
    sides, ratios, load = report["sides"], report["ratios"], report["load_average"]

    def cell(side: str, name: str) -> str:
        spread = sides[side][name]
        return f"{spread['median']:.4f} [{spread['q1']:.4f}-{spread['q3']:.4f}]"

    rows = [
        ["whole response RTF", cell("direct", "whole_rtf"), cell("direct_main_thread", "whole_rtf"),
         cell("server", "whole_rtf"), f"{ratios['whole_rtf']:.2f}", f"{ratios['whole_rtf_vs_main_thread']:.2f}",
         f"<= {WHOLE_GOAL}"],
        ["streamed first audio (s)", cell("direct", "first_audio_s"), cell("direct_main_thread", "first_audio_s"),
         cell("server", "first_audio_s"), f"{ratios['first_audio']:.2f}",
         f"{ratios['first_audio_vs_main_thread']:.2f}", f"<= {FIRST_AUDIO_GOAL}"],
    ]
    calls = report["model_calls"]
    return (
        f"{report['model_class']} {report['model_dir']}, {report['rounds']} rounds after {report['warmup_rounds']} "
        f"warm-up, {report['threads']} torch threads, load average {load['before']:.2f} -> {load['after']:.2f}, "
        f"{len(report['text'])}-character text: upstream {calls['direct']} model call(s), server {calls['server']}\n"
        + tabulate(rows, ["measure (median [IQR])", "direct, worker thread", "direct, main thread", "server",
                          "ratio", "ratio vs main thread", "goal"], tablefmt="github")
    )


def run(model_dir: Path, cosyvoice_root: Path, text: str, rounds: int, warmup: int, threads: int | None,
        json_path: Path | None) -> int:
    report = measure(model_dir, cosyvoice_root, text, rounds, warmup, threads)
    print(table(report))
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2))
    return 0
