"""diagnose's vllm check through the registry, with installed versions injected (nothing installed or imported)."""

from __future__ import annotations

import importlib.metadata
import sys

import pytest

from tests.diagnose.fakes import cpu_profile
from ttspilot.diagnose.packages import check_transformers
from ttspilot.diagnose.registry import Context, run_checks
from ttspilot.diagnose.result import Status


def vllm_result(dists: dict[str, str] | None = None):
    """The vllm check run by the registry; `dists` stand for the installed distributions (None: this python's)."""
    (result,) = run_checks(Context(profile=cpu_profile(), dists=dists), ["vllm"])
    return result


def test_without_vllm_it_is_an_optional_skip_naming_the_pairs():
    result = vllm_result({"transformers": "4.51.3"})
    assert result.status is Status.SKIP and result.area == "packages"
    assert result.detail == "vllm not installed: optional, for --load_vllm on a GPU with CosyVoice2/3 only"
    assert result.fix == ('to use it: pip install "vllm>=0.11" "transformers==4.57.1" '
                          '(or "vllm==0.9.0" "transformers==4.51.3")')


@pytest.mark.parametrize(("vllm", "transformers"), [("0.9.0", "4.51.3"), ("0.11.0", "4.57.1")])
def test_a_documented_pair_passes(vllm, transformers):
    result = vllm_result({"vllm": vllm, "transformers": transformers})
    assert result.status is Status.PASS and result.fix is None
    assert result.data["vllm"] == vllm and result.data["transformers"] == transformers


def test_a_documented_vllm_with_the_other_lines_transformers_fails_with_the_transformers_fix():
    result = vllm_result({"vllm": "0.11.0", "transformers": "4.51.3"})
    assert result.status is Status.FAIL
    assert result.detail == "vllm 0.11.0 with transformers 4.51.3: upstream pairs vllm>=0.11 with transformers 4.57.1"
    assert result.fix == 'pip install "transformers==4.57.1"'


def test_an_undocumented_vllm_fails_with_both_pairs():
    result = vllm_result({"vllm": "0.10.2", "transformers": "4.56.1"})
    assert result.status is Status.FAIL and "vllm 0.10.2 is untested by upstream" in result.detail
    assert result.fix.startswith('pip install "vllm>=0.11" "transformers==4.57.1"')


def test_the_real_lookup_reads_package_metadata_and_never_imports_vllm():
    try:
        installed = bool(importlib.metadata.version("vllm"))
    except importlib.metadata.PackageNotFoundError:
        installed = False
    imported_before = "vllm" in sys.modules
    result = vllm_result()
    assert (result.status is not Status.SKIP) == installed
    assert ("vllm" in sys.modules) == imported_before


@pytest.mark.parametrize(("vllm", "transformers", "status"), [
    ("0.11.0", "4.57.1", Status.PASS), ("0.11.0", "4.51.3", Status.WARN), ("0.9.0", "4.51.3", Status.PASS),
    ("0.10.0", "4.51.3", Status.PASS),  # no documented line: CosyVoice's own pin (the vllm check fails it)
])
def test_transformers_check_asks_for_the_version_the_installed_vllm_line_needs(vllm, transformers, status):
    finding = check_transformers({"vllm": vllm, "transformers": transformers}, engine="cosyvoice")
    assert finding.status is status
    if status is Status.WARN:
        assert finding.fix == 'pip install "transformers==4.57.1"'
        assert "the version upstream pairs with vllm 0.11.0 is 4.57.1" in finding.detail
