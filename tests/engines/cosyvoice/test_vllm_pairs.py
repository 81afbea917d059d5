"""The verdict on installed vllm/transformers versions against the pairs upstream documents (pure)."""

from __future__ import annotations

import pytest

from ttspilot.engines.cosyvoice.vllm_pairs import DOCUMENTED_PAIRS, install_hint, judge_pair, release

NEW_PAIR = 'pip install "vllm>=0.11" "transformers==4.57.1"'
BOTH_PAIRS = f'{NEW_PAIR} (or "vllm==0.9.0" "transformers==4.51.3")'


@pytest.mark.parametrize(("text", "numbers"), [("0.11.0", (0, 11, 0)), ("0.11.0rc1", (0, 11, 0)),
                                               ("0.9.0+cu118", (0, 9, 0)), ("0.9.0.1", (0, 9, 0, 1)),
                                               ("4.57.1.dev0", (4, 57, 1)), ("unknown", ())])
def test_release_numbers(text, numbers):
    assert release(text) == numbers


@pytest.mark.parametrize(("vllm", "transformers"), [
    ("0.9.0", "4.51.3"), ("0.9.0.1", "4.51.3"), ("0.9.0+cu118", "4.51.3"),
    ("0.11.0", "4.57.1"), ("0.11.2", "4.57.1"), ("0.12.0", "4.57.1"), ("1.0.0", "4.57.1"), ("0.11.0rc1", "4.57.1"),
])
def test_documented_pairs_work(vllm, transformers):
    verdict = judge_pair(vllm, transformers)
    assert verdict.works and verdict.fix is None
    assert verdict.detail == f"vllm {vllm} with transformers {transformers}: a pair upstream documents"


@pytest.mark.parametrize(("vllm", "transformers", "fix"), [
    ("0.9.0", "4.57.1", 'pip install "transformers==4.51.3"'),  # a documented vllm keeps its version
    ("0.9.0", "4.51.2", 'pip install "transformers==4.51.3"'),
    ("0.9.0", None, 'pip install "transformers==4.51.3"'),
    ("0.11.0", "4.51.3", 'pip install "transformers==4.57.1"'),
    ("0.11.1", "4.56.2", 'pip install "transformers==4.57.1"'),
    ("0.13.0", "4.57.0", 'pip install "transformers==4.57.1"'),
])
def test_a_documented_vllm_with_another_transformers_changes_transformers(vllm, transformers, fix):
    verdict = judge_pair(vllm, transformers)
    assert not verdict.works and verdict.fix == fix


@pytest.mark.parametrize(("vllm", "why"), [
    ("0.8.5", "cannot run CosyVoice"), ("0.6.0", "cannot run CosyVoice"),
    ("0.9.1", "is untested by upstream"), ("0.9.2", "is untested by upstream"), ("0.10.1.1", "is untested by upstream"),
])
@pytest.mark.parametrize("transformers", ["4.51.3", "4.57.1", None])
def test_any_other_vllm_is_replaced_by_a_documented_pair(vllm, why, transformers):
    verdict = judge_pair(vllm, transformers)
    assert not verdict.works and verdict.fix == BOTH_PAIRS
    assert f"vllm {vllm} {why}" in verdict.detail
    assert "vllm>=0.11 + transformers 4.57.1, vllm==0.9.0 + transformers 4.51.3" in verdict.detail


def test_one_table_newest_first_and_the_hint_names_every_pair():
    assert [(line.vllm, line.transformers) for line in DOCUMENTED_PAIRS] == [("vllm>=0.11", "4.57.1"),
                                                                             ("vllm==0.9.0", "4.51.3")]
    assert install_hint() == BOTH_PAIRS
