"""The estimator plan path on a real export: each tree's tiny estimator, exported to ONNX as upstream's
export_onnx.py does, parsed by the fake TensorRT (so named) against our profile, built and placed.

The export runs in the CosyVoice environment, one subprocess per tree for its v1, v2 (U-Net) and v3 (DiT)
estimators (tens of seconds: importing the tree and instantiating the tiny configs); the plan path runs here.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.accel.fake_tensorrt import FakeTensorRT, onnx_io
from tests.support import REPO
from ttspilot.engines.cosyvoice.acceleration import ONNX_FILE
from ttspilot.engines.cosyvoice.plans import ensure_estimator_plan
from ttspilot.engines.cosyvoice.upstream import find_trees, model_versions

pytestmark = [pytest.mark.cosyvoice, pytest.mark.slow]

# The tiny config's modules, then its flow decoder estimator exported with the arguments of upstream's
# cosyvoice/bin/export_onnx.py (batch 2, seq_len 256, opset 18, these names and dynamic axes). dynamo=False:
# the TorchScript exporter upstream's call gets on the torch it pins; the torch.export one needs onnxscript.
EXPORT = """
import sys
from pathlib import Path
from ttspilot.engines.cosyvoice.upstream import upstream_on_path
from ttspilot.engines.cosyvoice.tiny import CONFIGS, MODELS, QWEN_FOLDER, write_qwen

tree, out = Path(sys.argv[1]), Path(sys.argv[2])
upstream_on_path(tree)
import torch
from hyperpyyaml import load_hyperpyyaml

for version in map(int, sys.argv[3:]):
    model, folder, overrides = MODELS[version], out / f"v{version}", None
    if model.qwen:
        write_qwen(folder / QWEN_FOLDER, 0, qwen_ids=bool(model.sft_prefix))
        overrides = {"qwen_pretrain_path": str(folder / QWEN_FOLDER)}
    folder.mkdir(parents=True, exist_ok=True)
    modules = load_hyperpyyaml((CONFIGS / model.config).read_text(), overrides=overrides)
    estimator = modules["flow"].decoder.estimator.eval()
    channels, frames = estimator.out_channels, 256
    dummy = (torch.rand(2, channels, frames), torch.ones(2, 1, frames), torch.rand(2, channels, frames),
             torch.rand(2), torch.rand(2, channels), torch.rand(2, channels, frames))
    dynamic = {name: {2: "seq_len"} for name in ("x", "mask", "mu", "cond", "estimator_out")}
    with torch.no_grad():
        torch.onnx.export(estimator, dummy, str(folder / "flow.decoder.estimator.fp32.onnx"), export_params=True,
                          opset_version=18, do_constant_folding=True,
                          input_names=["x", "mask", "mu", "t", "spks", "cond"], output_names=["estimator_out"],
                          dynamic_axes=dynamic, dynamo=False)
"""
VERSIONS = (1, 2, 3)  # estimators: ConditionalDecoder, CausalConditionalDecoder (U-Nets) and DiT

# What upstream's get_trt_kwargs and forward_estimator assume (both trees): C = 80 mel channels.
EXPECTED_INPUTS = {"x": (2, 80, -1), "mask": (2, 1, -1), "mu": (2, 80, -1), "t": (2,), "spks": (2, 80),
                   "cond": (2, 80, -1)}


def trees() -> list:
    found = find_trees()
    if not found:
        reason = "no CosyVoice tree: no ../shared/upstream/CosyVoice-* and TTSPILOT_COSYVOICE_TREES unset"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(tree, id=tree.name) for tree in found]


@pytest.mark.parametrize("tree", trees())
def test_exported_tiny_estimators_build_and_place(cosyvoice_python, tmp_path, tree):
    versions = [v for v in VERSIONS if v in model_versions(tree)]
    result = subprocess.run([str(cosyvoice_python), "-c", EXPORT, str(tree), str(tmp_path), *map(str, versions)],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f"estimator export failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    for version in versions:
        model_dir = tmp_path / f"v{version}"
        inputs, outputs, dtypes = onnx_io(ONNX_FILE.path(model_dir))
        assert inputs == EXPECTED_INPUTS, f"v{version}"
        assert list(outputs) == ["estimator_out"] and outputs["estimator_out"][1:] == (80, -1), f"v{version}"
        assert set(dtypes.values()) == {"FLOAT"}, f"v{version}"

        fake = FakeTensorRT(read_onnx=True)
        placed = ensure_estimator_plan(model_dir, fp16=True, compute_capability="8.9", trt=fake)
        assert (placed.action, fake.builds) == ("placed", 1), f"v{version}"
        assert placed.path.read_bytes() == b"SERIALIZED-PLAN"
        assert {t.name: t.dtype for t in fake.networks[-1].inputs} == dict.fromkeys(EXPECTED_INPUTS, "HALF")
