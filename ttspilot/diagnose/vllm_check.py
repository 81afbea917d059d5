"""The installed vllm/transformers pair against the pairs upstream documents for CosyVoice2/3's --load_vllm.

Versions come from package metadata through `version_of` (vllm is never imported: its import takes
seconds and initialises CUDA). The pairs and the verdict are in `engines/cosyvoice/vllm_pairs.py`,
which the engine's vLLM gate shares. An undocumented pair FAILs rather than warns: it is the
"vllm that does not match transformers" operators meet as a crash at load or on the first call
(upstream's vLLM model class, cosyvoice/vllm/cosyvoice2.py, takes another path per vllm line and
imports vllm internals), and nothing but the documented pairs was run by upstream.
"""

from __future__ import annotations

from collections.abc import Callable

from ttspilot.diagnose.result import Finding, failed, passed, skipped
from ttspilot.engines.cosyvoice.vllm_pairs import DOCUMENTED_PAIRS, install_hint, judge_pair


def check_vllm_pair(version_of: Callable[[str], str | None]) -> Finding:
    """SKIP without vllm (optional), PASS for a documented pair, FAIL with the pip command for a working one."""
    vllm, transformers = version_of("vllm"), version_of("transformers")
    data = {"vllm": vllm, "transformers": transformers,
            "documented": [{"vllm": line.vllm, "transformers": line.transformers} for line in DOCUMENTED_PAIRS]}
    if vllm is None:
        return skipped("vllm not installed: optional, for --load_vllm on a GPU with CosyVoice2/3 only",
                       f"to use it: {install_hint()}", **data)
    verdict = judge_pair(vllm, transformers)
    if verdict.works:
        return passed(verdict.detail, **data)
    return failed(verdict.detail, verdict.fix, **data)
