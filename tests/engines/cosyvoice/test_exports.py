"""JIT and ONNX exports of tiny CosyVoice models in every tree: files, cache entries, placement, JIT pre-flight.

One subprocess per tree runs every version's folder (run_exports.py); the tests read its report.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.engines.cosyvoice.tiny_models import trees_and_versions, trees_for, write_tiny
from tests.support import REPO
from ttspilot.engines.cosyvoice.acceleration import JIT_MODULES, PRESERVED_ATTRS
from ttspilot.engines.cosyvoice.upstream import model_versions

pytestmark = [pytest.mark.integration, pytest.mark.cosyvoice, pytest.mark.slow]

RUNNER = Path(__file__).with_name("run_exports.py")
COMMAND = "python precompile_trt.py --model_dir"
# Exports start from a model on the CPU in fp32; upstream's classes take CUDA whenever they see it.
CPU_ONLY = {"CUDA_VISIBLE_DEVICES": ""}


@pytest.fixture(scope="module")
def exported(cosyvoice_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path, int], dict]:
    """tree, version -> the runner's report; each tree's tiny folders are made and exported once per module."""
    reports: dict[Path, dict] = {}

    def report(tree: Path, version: int) -> dict:
        if tree not in reports:
            base = tmp_path_factory.mktemp(f"exports-{tree.name}")
            folders = {v: write_tiny(cosyvoice_python, tree, v, base / f"v{v}") for v in model_versions(tree)}
            result = subprocess.run([str(cosyvoice_python), str(RUNNER), str(tree),
                                     *(f"{v}={folder}" for v, folder in folders.items())],
                                    cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **CPU_ONLY},
                                    capture_output=True, text=True, timeout=900)
            assert result.returncode == 0, result.stderr[-4000:]
            reports[tree] = {int(v): seen for v, seen in json.loads(result.stdout.strip().splitlines()[-1]).items()}
        return reports[tree][version]

    return report


def jit_names(version: int) -> list[str]:
    return [f"{module}.{precision}.zip" for module in JIT_MODULES[version] for precision in ("fp32", "fp16")]


@pytest.mark.parametrize(("tree", "version"), trees_and_versions((1, 2)))
def test_jit_files_are_written_cached_and_compute_what_the_eager_modules_compute(
        exported: Callable, tree: Path, version: int) -> None:
    seen = exported(tree, version)
    first = {row["name"]: row for row in seen["runs"][0]["results"]}
    for name in jit_names(version):
        assert first[name]["before"] == "missing" and first[name]["action"] == "placed", first[name]
        assert "built" in first[name]["detail"]
        assert seen["states"][name] == "ours"
        assert seen["entries"][name] == {"kind": "torchscript", "valid": True, "files": ["module.zip"]}
        jit = seen["jit"][name]
        assert jit["loaded"], jit
        if name.endswith(".fp32.zip"):
            assert jit["ran"] and jit["max_abs_diff"] < 1e-4, jit
        elif jit["ran"]:  # this CPU has the half kernels: close to fp32 within half precision
            assert jit["finite"] and jit["max_abs_diff"] < 5e-2, jit
    for module in JIT_MODULES[version]:
        assert seen["jit"][f"{module}:eager_dtype"] == "torch.float32"  # .half() went to a copy
        for precision in ("fp32", "fp16"):
            assert seen["jit"][f"{module}.{precision}.zip"]["forward_chunk"] == (module in PRESERVED_ATTRS)
    assert seen["caller_unchanged"]


@pytest.mark.parametrize("tree", trees_for(3))
def test_v3_exports_the_estimator_only(exported: Callable, tree: Path) -> None:
    seen = exported(tree, 3)
    assert [row["name"] for row in seen["runs"][0]["results"]] == ["flow.decoder.estimator.fp32.onnx"]
    assert seen["jit"] == {}
    assert seen["preflight"]["placed"] == {"results": [], "seconds": seen["preflight"]["placed"]["seconds"]}


@pytest.mark.parametrize(("tree", "version"), trees_and_versions((1, 2, 3)))
def test_estimator_onnx_has_upstreams_signature_fits_the_trt_profile_and_matches_torch(
        exported: Callable, tree: Path, version: int) -> None:
    onnx = exported(tree, version)["onnx"]
    assert onnx["inputs"] == ["x", "mask", "mu", "t", "spks", "cond"]
    assert onnx["outputs"] == ["estimator_out"]
    declared = onnx["declared"]
    for name in ("x", "mask", "mu", "cond", "estimator_out"):
        assert isinstance(declared[name][2], str), (name, declared[name])  # frames: dynamic
    # our profile is upstream's get_trt_kwargs, and every profile shape fits what the file declares
    assert onnx["profile"] == onnx["upstream_profile"]
    for name, shapes in onnx["profile"].items():
        for shape in shapes:
            assert len(shape) == len(declared[name])
            assert all(isinstance(d, str) or d == s for d, s in zip(declared[name], shape)), (name, shape)
    # t and spks are fixed, as upstream's forward_estimator sets them: (2,) and (2, 80)
    assert declared["t"] == [2] and declared["spks"] == [2, 80] and onnx["out_channels"] == 80
    assert all(diff < 1e-4 for diff in onnx["max_abs_diff"].values()), onnx["max_abs_diff"]
    assert exported(tree, version)["entries"]["flow.decoder.estimator.fp32.onnx"] == {
        "kind": "onnx", "valid": True, "files": ["model.onnx"]}


@pytest.mark.parametrize(("tree", "version"), trees_and_versions((1, 2)))
def test_second_export_reuses_what_is_placed_and_damage_is_moved_aside_but_shipped_files_stay(
        exported: Callable, tree: Path, version: int) -> None:
    seen = exported(tree, version)
    first, second = seen["runs"]
    assert {row["action"] for row in second["results"]} == {"kept"}
    assert second["seconds"] < first["seconds"] / 5, (first["seconds"], second["seconds"])

    damaged = seen["damaged"]
    rows = {row["name"]: row for row in damaged["results"]}
    corrupt, stale, foreign = (damaged["files"][which] for which in ("corrupt", "stale", "foreign"))
    assert (rows[corrupt]["before"], rows[corrupt]["action"]) == ("corrupt", "replaced")
    assert (rows[stale]["before"], rows[stale]["action"]) == ("stale", "replaced")
    assert "torch 0.0.0" in rows[stale]["detail"]
    assert all("cache entry reused" in rows[name]["detail"] for name in (corrupt, stale))  # nothing rebuilt
    assert (rows[foreign]["before"], rows[foreign]["action"]) == ("foreign", "shipped")
    assert damaged["shipped_unchanged"]
    assert sorted(name.split(".moved-aside-")[0] for name in damaged["moved_aside"]) == sorted([corrupt, stale])


@pytest.mark.parametrize(("tree", "version"), trees_and_versions((1, 2)))
def test_jit_preflight_passes_ours_restores_a_corrupt_copy_and_refuses_missing_or_broken_files(
        exported: Callable, tree: Path, version: int) -> None:
    preflight = exported(tree, version)["preflight"]
    fp16 = [name for name in jit_names(version) if ".fp16." in name]
    assert [(row["name"], row["before"], row["action"]) for row in preflight["placed"]["results"]] == [
        (name, "ours", "ok") for name in fp16]
    target = fp16[0]
    restored = {row["name"]: row for row in preflight["corrupt_placed"]["results"]}[target]
    assert (restored["before"], restored["action"]) == ("corrupt", "re-placed")
    assert preflight["restored"]
    broken = preflight["garbage_shipped"]["error"]
    assert broken.startswith(f"{target} in ") and "does not load" in broken and COMMAND in broken
    missing = preflight["missing"]["error"]
    assert missing.startswith(f"{target} is missing in ") and COMMAND in missing
    assert f"--cosyvoice_root {tree.resolve()}" in missing
