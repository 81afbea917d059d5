"""The vllm/transformers pairs upstream documents for CosyVoice2/3's vLLM path, and the verdict on an installed pair.

Pure (versions are strings; nothing is imported), so diagnose judges the pair from package metadata
and the engine's vLLM gate names what to install, neither loading vllm. Upstream's README ("vLLM
Usage"): vllm 0.9.0 with transformers 4.51.3 (legacy, the only one the 2025-10 tree knows), vllm
0.11 and later (V1 engine) with transformers 4.57.1; older vllm cannot run CosyVoice and the
versions in between (0.10.x) are untested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RELEASE = re.compile(r"\d+(?:\.\d+)*")


def release(version: str) -> tuple[int, ...]:
    """The release numbers of a version string: "0.11.0rc1" -> (0, 11, 0), "0.9.0+cu118" -> (0, 9, 0)."""
    match = RELEASE.match(version.strip())
    return tuple(int(part) for part in match.group().split(".")) if match else ()


@dataclass(frozen=True)
class VllmLine:
    """vllm releases in [low, high) and the transformers release upstream pairs them with."""

    vllm: str  # as pip takes it
    low: tuple[int, ...]
    high: tuple[int, ...] | None  # None: open-ended
    transformers: str

    def holds(self, vllm_version: str) -> bool:
        found = release(vllm_version)
        return self.low <= found and (self.high is None or found < self.high)

    @property
    def pip(self) -> str:
        return f'pip install "{self.vllm}" "transformers=={self.transformers}"'


# Newest first: the line a fix suggests first. 0.9.0's line takes its post-releases (0.9.0.1) too.
DOCUMENTED_PAIRS: tuple[VllmLine, ...] = (
    VllmLine("vllm>=0.11", (0, 11), None, "4.57.1"),
    VllmLine("vllm==0.9.0", (0, 9, 0), (0, 9, 1), "4.51.3"),
)


def install_hint() -> str:
    """Every documented pair as a pip command, newest first, on one line."""
    newest, *older = DOCUMENTED_PAIRS
    return newest.pip + "".join(f" (or {line.pip.removeprefix('pip install ')})" for line in older)


@dataclass(frozen=True)
class PairVerdict:
    works: bool  # a pair upstream documents
    detail: str
    fix: str | None  # the pip command for a working pair; None when it works


def judge_pair(vllm: str, transformers: str | None) -> PairVerdict:
    """Whether installed vllm and transformers versions are a pair upstream documents, and what to install if not.

    A vllm on a documented line keeps its version and gets that line's transformers; any other vllm is
    replaced by a documented pair.
    """
    line = next((line for line in DOCUMENTED_PAIRS if line.holds(vllm)), None)
    shown = f"transformers {transformers}" if transformers else "no transformers"
    if line is None:
        why = "cannot run CosyVoice" if release(vllm) < DOCUMENTED_PAIRS[-1].low else "is untested by upstream"
        documented = ", ".join(f"{pair.vllm} + transformers {pair.transformers}" for pair in DOCUMENTED_PAIRS)
        return PairVerdict(False, f"vllm {vllm} with {shown}: vllm {vllm} {why} (documented: {documented})",
                           install_hint())
    if transformers is not None and release(transformers)[:3] == release(line.transformers):
        return PairVerdict(True, f"vllm {vllm} with {shown}: a pair upstream documents", None)
    return PairVerdict(False, f"vllm {vllm} with {shown}: upstream pairs {line.vllm} with transformers "
                              f"{line.transformers}", f'pip install "transformers=={line.transformers}"')
