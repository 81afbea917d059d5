"""CosyVoice estimator plans: built by our builder (TensorRT itself a named fake), placed only when valid here.

An estimator-shaped ONNX (upstream's export: x, mask, mu, cond (2, C, seq_len); t (2,); spks (2, 80))
is parsed by the fake the way TensorRT's parser declares it, so the profile check runs on its real inputs.
No torch needed: the CUDA probe is injected too.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.accel.fake_tensorrt import FakeTensorRT
from ttspilot.accel.placement import record_path
from ttspilot.accel.trt import PlanBuildError
from ttspilot.config import TIERS, cache_dir_for
from ttspilot.engines.base import EngineLoadError
from ttspilot.engines.cosyvoice.acceleration import ONNX_FILE, plan_file
from ttspilot.engines.cosyvoice.plans import ensure_estimator_plan, estimator_plan_state, prepare_plan_for_load
from ttspilot.hardware import tensorrt_wheel

FP16_PLAN = plan_file("fp16").name


def write_estimator_onnx(path: Path, *, dynamic_t: bool = False) -> Path:
    """A few ONNX operators with the estimator's signature: out = (x * mask + mu + cond + spks) * t."""
    import onnx
    from onnx import TensorProto, helper

    def value(name, dims):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)

    length = "seq_len"
    inputs = [value("x", [2, 80, length]), value("mask", [2, 1, length]), value("mu", [2, 80, length]),
              value("t", ["batch"] if dynamic_t else [2]), value("spks", [2, 80]), value("cond", [2, 80, length])]
    nodes = [
        helper.make_node("Mul", ["x", "mask"], ["masked"]),
        helper.make_node("Add", ["masked", "mu"], ["with_mu"]),
        helper.make_node("Add", ["with_mu", "cond"], ["with_cond"]),
        helper.make_node("Unsqueeze", ["spks", "last_axis"], ["spks_3d"]),
        helper.make_node("Add", ["with_cond", "spks_3d"], ["with_spks"]),
        helper.make_node("Reshape", ["t", "t_shape"], ["t_3d"]),
        helper.make_node("Mul", ["with_spks", "t_3d"], ["estimator_out"]),
    ]
    constants = [helper.make_tensor("last_axis", TensorProto.INT64, [1], [2]),
                 helper.make_tensor("t_shape", TensorProto.INT64, [3], [2, 1, 1])]
    graph = helper.make_graph(nodes, "estimator_shaped", inputs, [value("estimator_out", [2, 80, length])], constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.fixture
def model_dir(tmp_path) -> Path:
    folder = tmp_path / "CosyVoice2-tiny"
    folder.mkdir()
    write_estimator_onnx(ONNX_FILE.path(folder))
    return folder


def fake_trt(plan: bytes = b"PLAN-FOR-THIS-GPU", **options) -> FakeTensorRT:
    return FakeTensorRT(read_onnx=True, plan=plan, **options)


def record(model_dir: Path, name: str = FP16_PLAN) -> dict:
    return json.loads(record_path(cache_dir_for(model_dir), model_dir / name).read_text())


def moved_aside(model_dir: Path) -> list[Path]:
    return sorted(model_dir.glob("*.moved-aside-*"))


def test_builds_once_places_then_keeps(model_dir):
    fake = fake_trt()
    first = ensure_estimator_plan(model_dir, fp16=True, compute_capability="8.9", trt=fake)
    target = model_dir / FP16_PLAN
    assert (first.path, first.state_before, first.action, first.cache) == (target, "missing", "placed", "built")
    assert target.read_bytes() == b"PLAN-FOR-THIS-GPU"
    # upstream's get_trt_kwargs, checked against the ONNX's declared inputs; t and spks fixed
    assert [c[1:] for c in fake.calls if c[0] == "profile.set_shape"] == [
        (name, (2, lead, 4), (2, lead, 500), (2, lead, 3000))
        for name, lead in (("x", 80), ("mask", 1), ("mu", 80), ("cond", 80))]
    network = fake.networks[-1]
    assert {t.name: t.dtype for t in network.inputs + network.outputs} == dict.fromkeys(
        ["x", "mask", "mu", "t", "spks", "cond", "estimator_out"], "HALF")  # as upstream binds FP16 plans
    key = record(model_dir)["key"]
    assert (key["compute_capability"], key["tensorrt"], key["precision"], key["io"]) == ("8.9", "10.9.0.34",
                                                                                         "fp16", "half")
    placed_at = target.stat().st_mtime_ns

    second = ensure_estimator_plan(model_dir, fp16=True, compute_capability="8.9", trt=fake)
    assert (second.state_before, second.action, second.cache, fake.builds) == ("ours", "kept", "hit", 1)
    assert target.stat().st_mtime_ns == placed_at and moved_aside(model_dir) == []


def test_fp32_plan_binds_the_onnx_types(model_dir):
    fake = fake_trt()
    result = ensure_estimator_plan(model_dir, fp16=False, compute_capability="8.9", trt=fake)
    assert result.path.name == "flow.decoder.estimator.fp32.mygpu.plan"
    assert not [c for c in fake.calls if c[0] in ("tensor.dtype", "config.set_flag")]
    assert record(model_dir, result.path.name)["key"]["io"] == "onnx"


def test_plan_for_another_gpu_is_moved_aside_and_rebuilt(model_dir):
    ensure_estimator_plan(model_dir, fp16=True, compute_capability="8.9", trt=fake_trt(b"PLAN-SM89"))
    other = fake_trt(b"PLAN-SM75")
    result = ensure_estimator_plan(model_dir, fp16=True, compute_capability="7.5", trt=other)
    assert (result.state_before, result.action, result.cache, other.builds) == ("stale", "replaced", "built", 1)
    assert result.path.read_bytes() == b"PLAN-SM75"
    assert moved_aside(model_dir) == [result.moved_aside]
    assert result.moved_aside.read_bytes() == b"PLAN-SM89"  # renamed, never deleted
    assert record(model_dir)["key"]["compute_capability"] == "7.5"


def test_hand_copied_plan_is_never_kept(model_dir, caplog):
    target = model_dir / FP16_PLAN
    target.write_bytes(b"PLAN-FOR-THIS-GPU")  # even byte for byte what we would build: no record, unknown origin
    with caplog.at_level("WARNING", logger="ttspilot.accel"):
        result = ensure_estimator_plan(model_dir, fp16=True, compute_capability="8.9", trt=fake_trt())
    assert (result.state_before, result.action) == ("foreign", "replaced")
    assert result.moved_aside.read_bytes() == b"PLAN-FOR-THIS-GPU"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{FP16_PLAN} moved aside to {result.moved_aside.name}: ")
    assert "not placed by ttspilot" in warnings[0]
    assert record(model_dir)["sha256"]  # what is there now is ours


def test_changed_plan_is_moved_aside_and_replaced(model_dir):
    fake = fake_trt()
    target = ensure_estimator_plan(model_dir, fp16=True, compute_capability="8.9", trt=fake).path
    target.write_bytes(b"PLAN-FOR-THIS-GPX")  # same size, other bytes
    result = ensure_estimator_plan(model_dir, fp16=True, compute_capability="8.9", trt=fake)
    assert (result.state_before, result.action, result.cache, fake.builds) == ("corrupt", "replaced", "hit", 1)
    assert target.read_bytes() == b"PLAN-FOR-THIS-GPU"
    assert result.moved_aside.read_bytes() == b"PLAN-FOR-THIS-GPX"


def test_missing_onnx_names_the_export_command(tmp_path):
    fake = fake_trt()
    with pytest.raises(PlanBuildError) as caught:
        ensure_estimator_plan(tmp_path, fp16=True, compute_capability="8.9", trt=fake)
    assert str(caught.value) == (f"flow.decoder.estimator.fp32.onnx is not in {tmp_path}: export it with "
                                 f"`python precompile_trt.py --model_dir {tmp_path} --cosyvoice_root TREE`")
    assert list(tmp_path.iterdir()) == [] and fake.calls == []


def test_profile_is_checked_against_the_onnx(model_dir):
    write_estimator_onnx(ONNX_FILE.path(model_dir), dynamic_t=True)  # a `t` the profile gives no shapes for
    fake = fake_trt()
    with pytest.raises(PlanBuildError, match=r"dynamic inputs \['t'\] of flow.decoder.estimator.fp32.onnx"):
        ensure_estimator_plan(model_dir, fp16=True, compute_capability="8.9", trt=fake)
    assert fake.builds == 0 and not (model_dir / FP16_PLAN).exists()


def test_state_for_list_builds_and_imports_nothing(model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # importing it would raise
    here = dict(fp16=True, compute_capability="8.9", tensorrt_version="10.9.0.34")
    assert estimator_plan_state(model_dir, **here).state == "missing"
    ensure_estimator_plan(model_dir, fp16=True, compute_capability="8.9", trt=fake_trt())
    assert estimator_plan_state(model_dir, **here).state == "ours"
    elsewhere = estimator_plan_state(model_dir, **{**here, "compute_capability": "7.5"})
    assert elsewhere.state == "stale" and "compute_capability 8.9 (here 7.5)" in elsewhere.reason
    assert estimator_plan_state(model_dir, **{**here, "tensorrt_version": "10.10.0"}).state == "stale"
    unchecked = estimator_plan_state(model_dir, **{**here, "tensorrt_version": None})
    assert (unchecked.state, unchecked.reason) == ("unchecked", f"{FP16_PLAN} cannot be checked here: "
                                                                "TensorRT is not installed")
    assert estimator_plan_state(model_dir, **{**here, "fp16": False}).state == "missing"
    record_path(cache_dir_for(model_dir), model_dir / FP16_PLAN).unlink()
    assert estimator_plan_state(model_dir, **here).state == "foreign"


TRT_FP16 = TIERS["trt_fp16"]


def fake_cuda(capability):
    asked = []

    def probe(device_id):
        asked.append(device_id)
        return capability

    probe.asked = asked
    return probe


def test_prepare_without_cuda_touches_nothing(model_dir, caplog):
    fake = fake_trt()
    before = sorted(p.name for p in model_dir.rglob("*"))
    with caplog.at_level("INFO", logger="ttspilot.engines.cosyvoice"):
        prepared = prepare_plan_for_load(model_dir, TRT_FP16, device_id=0, trt=fake, cuda_capability=fake_cuda(None))
    assert prepared is None
    assert sorted(p.name for p in model_dir.rglob("*")) == before and fake.calls == []
    assert "torch sees no CUDA device, so upstream turns load_trt off" in caplog.text


def test_prepare_places_the_plan_for_the_device(model_dir):
    cuda = fake_cuda((8, 9))
    result = prepare_plan_for_load(model_dir, TRT_FP16, device_id=1, trt=fake_trt(), cuda_capability=cuda)
    assert cuda.asked == [1]
    assert (result.action, result.path.read_bytes()) == ("placed", b"PLAN-FOR-THIS-GPU")
    assert record(model_dir)["key"]["compute_capability"] == "8.9"


def test_prepare_without_tensorrt_says_what_to_install(model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(EngineLoadError, match=re.escape(f"pip install {tensorrt_wheel()}")):
        prepare_plan_for_load(model_dir, TRT_FP16, device_id=0, cuda_capability=fake_cuda((8, 9)))
    assert not (model_dir / FP16_PLAN).exists()


def test_failed_build_leaves_no_plan_upstream_would_load(model_dir):
    target = model_dir / FP16_PLAN
    target.write_bytes(b"PLAN-FROM-ANOTHER-MACHINE")
    with pytest.raises(EngineLoadError) as caught:
        prepare_plan_for_load(model_dir, TRT_FP16, device_id=0, trt=fake_trt(plan=None),
                              cuda_capability=fake_cuda((8, 9)))
    assert caught.value.reason.startswith(
        "TensorRT flow plan: TensorRT failed to build a plan for flow.decoder.estimator.fp32.onnx")
    assert not target.exists()
    assert [p.read_bytes() for p in moved_aside(model_dir)] == [b"PLAN-FROM-ANOTHER-MACHINE"]
