"""What the launcher tries after a candidate fails: vLLM is dropped before its tier, FP16 audio the canary rejects
rules out the FP16 tiers left; any other failure keeps the plain order."""

from __future__ import annotations

import pytest

from ttspilot.config import FALLBACK_ORDER
from ttspilot.launcher.child import Failure
from ttspilot.launcher.run import after_failure
from ttspilot.tiers import Candidate


def planned(*tiers: str) -> list[Candidate]:
    return [Candidate(tier.removesuffix("+vllm"), "planned", vllm=tier.endswith("+vllm")) for tier in tiers]


def labels(candidates: list[Candidate]) -> list[str]:
    return [candidate.label for candidate in candidates]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("non_finite", "canary failed: 512 of 60416 samples are NaN or infinite"),
        ("silent", "canary failed: silent output: RMS 0.00000 below 0.005"),
        ("clipped", "canary failed: clipped output: 41.0% of samples at full scale (|x| >= 0.999), over 1%"),
    ],
)
def test_fp16_audio_the_canary_rejects_falls_back_to_fp32(fault: str, reason: str) -> None:
    full, *rest = planned(*FALLBACK_ORDER)
    remaining, line = after_failure(full, Failure(reason, fault), rest)
    assert labels(remaining) == ["jit", "basic", "cpu"]
    assert line == (f"FP16 failed the canary on full ({reason.removeprefix('canary failed: ')}): falling back to FP32, "
                    "next jit (skipping trt_fp16, jit_fp16, fp16)")


def test_fp16_fallback_from_a_later_tier_skips_only_what_is_left() -> None:
    fp16, *rest = planned("fp16", "basic", "cpu")
    remaining, line = after_failure(fp16, Failure("canary failed: silent output", "silent"), rest)
    assert labels(remaining) == ["basic", "cpu"]
    assert line == "FP16 failed the canary on fp16 (silent output): falling back to FP32, next basic"


@pytest.mark.parametrize(
    ("tier", "failure"),
    [
        ("full", Failure("exited with code 3: flow.decoder.estimator.fp16.mygpu.plan failed to deserialize")),
        ("full", Failure("not ready after 180 s (warming up)")),
        ("full", Failure("3 crashes within 300 s: ...")),
        ("full", Failure("canary failed: duration 9.90 s outside 0.88-11.00 s for the text", "duration")),
        ("jit", Failure("canary failed: silent output: RMS 0.00000 below 0.005", "silent")),  # FP32: not precision
    ],
)
def test_other_failures_keep_the_plain_order(tier: str, failure: Failure) -> None:
    candidates = planned(*FALLBACK_ORDER)
    index = FALLBACK_ORDER.index(tier)
    remaining, line = after_failure(candidates[index], failure, candidates[index + 1:])
    assert remaining == candidates[index + 1:]
    assert line == f"tier {tier} failed: {failure.reason}; trying the next tier"


def test_fp16_failure_with_no_fp32_tier_left_ends_plainly() -> None:
    remaining, line = after_failure(*planned("fp16"), Failure("canary failed: silent output", "silent"), [])
    assert remaining == []
    assert line == "tier fp16 failed: canary failed: silent output; no tier left"


@pytest.mark.parametrize("fault", [None, "non_finite"])
def test_vllm_that_fails_is_dropped_and_its_tier_tried_alone(fault: str | None) -> None:
    failed, *rest = planned("trt_fp16+vllm", "trt_fp16", "jit_fp16", "jit", "cpu")
    remaining, line = after_failure(failed, Failure("exited with code 1: vllm needs transformers<4.54", fault), rest)
    assert remaining == rest  # the same tier without vLLM, then the plan as it was, FP16 tiers included
    assert line == "vLLM dropped: exited with code 1: vllm needs transformers<4.54; trying trt_fp16 without it"


def test_vllm_dropped_puts_its_tier_next_wherever_the_plan_had_it() -> None:
    failed, *rest = planned("jit_fp16+vllm", "full", "jit_fp16", "cpu")
    remaining, _ = after_failure(failed, Failure("not ready after 180 s"), rest)
    assert labels(remaining) == ["jit_fp16", "full", "cpu"]
    remaining, _ = after_failure(failed, Failure("not ready after 180 s"), planned("cpu"))
    assert labels(remaining) == ["jit_fp16", "cpu"]
