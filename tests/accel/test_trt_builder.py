"""TensorRT plan builder at its boundary: the call sequence into `tensorrt` (a named fake), failures, cache keys.

No GPU and no tensorrt package here: these tests check what is asked of TensorRT, not what
TensorRT does with it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.accel.fake_tensorrt import FakeTensorRT
from ttspilot.accel import trt as trt_module
from ttspilot.accel.cache import MANIFEST, check_entry
from ttspilot.accel.fingerprint import FileHasher
from ttspilot.accel.trt import PLAN_FILE, PlanBuildError, build_plan, ensure_plan, plan_key, profile_from_ranges

PROFILE = {"input": ((1, 1), (1, 256), (1, 1024)), "input_lengths": ((1,), (1,), (1,))}


@pytest.fixture
def onnx_file(tmp_path) -> Path:
    path = tmp_path / "voice.onnx"
    path.write_bytes(b"onnx model bytes")
    return path


class RecordingProgress:
    def __init__(self, cancel_at: int | None = None):
        self.events = []
        self.cancel_at = cancel_at

    def phase_start(self, name, parent, steps):
        self.events.append(("start", name, parent, steps))

    def step(self, name, step):
        self.events.append(("step", name, step))
        return self.cancel_at is None or step < self.cancel_at

    def phase_finish(self, name):
        self.events.append(("finish", name))


def test_build_sequence_follows_the_tensorrt10_api(tmp_path, onnx_file):
    fake = FakeTensorRT()
    plan_path = tmp_path / "out" / "voice.plan"
    plan_path.parent.mkdir()
    result = build_plan(onnx_file, plan_path, PROFILE, fp16=True, workspace_bytes=1 << 30, trt=fake)
    assert fake.calls == [
        ("Logger", "WARNING"),
        ("Builder",),
        ("create_network", 0),  # TensorRT 10: explicit batch is implied, no flag
        ("OnnxParser",),
        ("parse_from_file", str(onnx_file)),
        ("create_builder_config",),
        ("config.set_memory_pool_limit", "WORKSPACE", 1 << 30),
        ("config.set_flag", "FP16"),
        ("create_optimization_profile",),
        ("profile.set_shape", "input", (1, 1), (1, 256), (1, 1024)),
        ("profile.set_shape", "input_lengths", (1,), (1,), (1,)),
        ("config.add_optimization_profile",),
        ("build_serialized_network",),
    ]
    assert plan_path.read_bytes() == b"SERIALIZED-PLAN"
    assert (result.size_bytes, result.fp16, result.tensorrt_version) == (15, True, "10.9.0.34")
    assert [p.name for p in plan_path.parent.iterdir()] == ["voice.plan"]  # no temp file left


def test_fp32_build_sets_no_precision_flag(tmp_path, onnx_file):
    fake = FakeTensorRT()
    build_plan(onnx_file, tmp_path / "p.plan", PROFILE, fp16=False, trt=fake)
    assert not [c for c in fake.calls if c[0] == "config.set_flag"]


def test_parse_error_is_clear_and_leaves_no_file(tmp_path, onnx_file):
    fake = FakeTensorRT(parse_errors=["In node 12 (RandomNormalLike): UNSUPPORTED_NODE\nstack...", "second"])
    with pytest.raises(PlanBuildError) as caught:
        build_plan(onnx_file, tmp_path / "p.plan", PROFILE, fp16=True, trt=fake)
    assert (
        str(caught.value)
        == "TensorRT could not parse voice.onnx: In node 12 (RandomNormalLike): UNSUPPORTED_NODE (2 error(s))"
    )
    assert not (tmp_path / "p.plan").exists()
    assert ("build_serialized_network",) not in fake.calls


def test_build_returning_none_leaves_no_file(tmp_path, onnx_file):
    fake = FakeTensorRT(plan=None)
    with pytest.raises(PlanBuildError, match="TensorRT failed to build a plan for voice.onnx"):
        build_plan(onnx_file, tmp_path / "p.plan", PROFILE, fp16=True, trt=fake)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["voice.onnx"]


def test_rejected_profile_is_an_error(tmp_path, onnx_file):
    with pytest.raises(PlanBuildError, match="rejected the optimization profile"):
        build_plan(onnx_file, tmp_path / "p.plan", PROFILE, fp16=True, trt=FakeTensorRT(profile_index=-1))


@pytest.mark.parametrize(
    "profile, message",
    [
        ({**PROFILE, "speaker": ((1,), (1,), (1,))}, "names inputs \\['speaker'\\]"),
        ({"input": PROFILE["input"]}, "dynamic inputs \\['input_lengths'\\]"),
        ({**PROFILE, "scales": ((4,), (4,), (4,))}, "does not fit its declared shape \\(3,\\)"),
    ],
)
def test_profile_is_checked_against_the_network(tmp_path, onnx_file, profile, message):
    fake = FakeTensorRT()
    with pytest.raises(PlanBuildError, match=message):
        build_plan(onnx_file, tmp_path / "p.plan", profile, fp16=True, trt=fake)
    assert fake.builds == 0


def test_progress_monitor_forwards_builder_phases(tmp_path, onnx_file):
    fake = FakeTensorRT()
    progress = RecordingProgress()
    build_plan(onnx_file, tmp_path / "p.plan", PROFILE, fp16=True, progress=progress, trt=fake)
    assert ("IProgressMonitor.__init__",) in fake.calls
    assert progress.events == [
        ("start", "Building engine", None, 3),
        ("step", "Building engine", 0),
        ("step", "Building engine", 1),
        ("step", "Building engine", 2),
        ("finish", "Building engine"),
        ("start", "Tactic search", "Building engine", 2),
        ("step", "Tactic search", 0),
        ("step", "Tactic search", 1),
        ("finish", "Tactic search"),
    ]


def test_progress_sink_can_cancel_and_cannot_crash_the_build(tmp_path, onnx_file):
    with pytest.raises(PlanBuildError):
        build_plan(
            onnx_file,
            tmp_path / "p.plan",
            PROFILE,
            fp16=True,
            progress=RecordingProgress(cancel_at=1),
            trt=FakeTensorRT(),
        )

    class Exploding:
        def phase_start(self, *a):
            raise RuntimeError("bar broke")

        def step(self, *a):
            raise RuntimeError("bar broke")

        def phase_finish(self, *a):
            raise RuntimeError("bar broke")

    build_plan(onnx_file, tmp_path / "p.plan", PROFILE, fp16=True, progress=Exploding(), trt=FakeTensorRT())
    assert (tmp_path / "p.plan").exists()


def test_tqdm_progress_bars_take_builder_phases(tmp_path, onnx_file):
    import io

    from ttspilot.progress import TqdmBuildProgress

    progress = TqdmBuildProgress(file=io.StringIO())
    build_plan(onnx_file, tmp_path / "p.plan", PROFILE, fp16=True, progress=progress, trt=FakeTensorRT())
    assert progress._bars == {}  # every phase closed its bar


def test_timing_cache_is_loaded_and_saved(tmp_path, onnx_file):
    timing = tmp_path / "timing.cache"
    timing.write_bytes(b"previous")
    fake = FakeTensorRT()
    build_plan(onnx_file, tmp_path / "p.plan", PROFILE, fp16=True, timing_cache_path=timing, trt=fake)
    assert ("config.create_timing_cache", b"previous") in fake.calls
    assert ("config.set_timing_cache", False) in fake.calls
    assert timing.read_bytes() == b"previous+timing"


def test_missing_tensorrt_package_is_explained(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(PlanBuildError, match="pip install tensorrt"):
        trt_module.load_tensorrt()


def test_plan_key_names_gpu_tensorrt_precision_and_source():
    key = plan_key(
        Path("flow.decoder.estimator.fp32.onnx"),
        "cd" * 32,
        tensorrt_version="10.9.0.34",
        compute_capability="8.9",
        fp16=True,
        profiles=PROFILE,
    )
    assert key.kind == "trt-plan"
    assert key.name.startswith("flow.decoder.estimator.fp32--trt10.9.0.34-sm89-fp16-srccdcdcdcd-")
    assert key.fields["profile"]["input"] == [[1, 1], [1, 256], [1, 1024]]
    with pytest.raises(PlanBuildError, match="compute capability unknown"):
        plan_key(Path("m.onnx"), "cd" * 32, tensorrt_version="10", compute_capability="", fp16=True, profiles=PROFILE)


def test_ensure_plan_builds_once_then_reuses(tmp_path, onnx_file):
    fake = FakeTensorRT()
    cache_dir = tmp_path / "cache"
    first = ensure_plan(
        onnx_file, cache_dir, PROFILE, fp16=True, compute_capability="8.9", trt=fake, hasher=FileHasher(None)
    )
    assert first.status == "built"
    assert (first.path / PLAN_FILE).read_bytes() == b"SERIALIZED-PLAN"
    manifest = json.loads((first.path / MANIFEST).read_text())
    assert manifest["key"]["compute_capability"] == "8.9"
    assert manifest["key"]["tensorrt"] == "10.9.0.34"
    assert manifest["key"]["precision"] == "fp16"
    second = ensure_plan(
        onnx_file, cache_dir, PROFILE, fp16=True, compute_capability="8.9", trt=fake, hasher=FileHasher(None)
    )
    assert (second.status, fake.builds) == ("hit", 1)


def test_plan_for_another_gpu_or_tensorrt_is_not_loaded(tmp_path, onnx_file):
    cache_dir = tmp_path / "cache"
    ours = ensure_plan(
        onnx_file, cache_dir, PROFILE, fp16=True, compute_capability="8.9", trt=FakeTensorRT(), hasher=FileHasher(None)
    )
    other_gpu = ensure_plan(
        onnx_file, cache_dir, PROFILE, fp16=True, compute_capability="9.0", trt=FakeTensorRT(), hasher=FileHasher(None)
    )
    assert other_gpu.status == "built" and other_gpu.path != ours.path

    newer = FakeTensorRT()
    newer.__version__ = "10.10.0"
    upgraded = ensure_plan(
        onnx_file, cache_dir, PROFILE, fp16=True, compute_capability="8.9", trt=newer, hasher=FileHasher(None)
    )
    assert upgraded.status == "built" and newer.builds == 1


def test_stale_plan_manifest_is_rebuilt(tmp_path, onnx_file):
    cache_dir = tmp_path / "cache"
    entry = ensure_plan(
        onnx_file, cache_dir, PROFILE, fp16=True, compute_capability="8.9", trt=FakeTensorRT(), hasher=FileHasher(None)
    ).path
    manifest = json.loads((entry / MANIFEST).read_text())
    manifest["key"]["compute_capability"] = "8.6"  # e.g. a cache copied from another machine
    (entry / MANIFEST).write_text(json.dumps(manifest))
    fake = FakeTensorRT()
    outcome = ensure_plan(
        onnx_file, cache_dir, PROFILE, fp16=True, compute_capability="8.9", trt=fake, hasher=FileHasher(None)
    )
    assert outcome.status == "rebuilt" and "compute_capability 8.6 (here 8.9)" in outcome.reason
    assert check_entry(entry, outcome.key, FileHasher(None)).valid


def test_failed_plan_build_leaves_no_cache_entry(tmp_path, onnx_file):
    cache_dir = tmp_path / "cache"
    with pytest.raises(PlanBuildError):
        ensure_plan(
            onnx_file,
            cache_dir,
            PROFILE,
            fp16=True,
            compute_capability="8.9",
            trt=FakeTensorRT(plan=None),
            hasher=FileHasher(None),
        )
    kind_dir = cache_dir / "trt-plan"
    assert [p.name for p in kind_dir.iterdir() if not p.name.endswith(".lock")] == []


def test_cosyvoice_estimator_profile_from_dimension_ranges():
    profile = profile_from_ranges(
        {
            "x": [2, 80, (4, 500, 3000)],
            "mask": [2, 1, (4, 500, 3000)],
            "t": [2],
        }
    )
    assert profile["x"] == ((2, 80, 4), (2, 80, 500), (2, 80, 3000))
    assert profile["mask"] == ((2, 1, 4), (2, 1, 500), (2, 1, 3000))
    assert profile["t"] == ((2,), (2,), (2,))


def test_half_io_binds_float_inputs_and_outputs_as_half(tmp_path, onnx_file):
    """Upstream CosyVoice's FP16 plans take and give HALF tensors; integer inputs keep their type."""
    fake = FakeTensorRT()  # input, input_lengths INT64; scales, output FLOAT
    result = build_plan(onnx_file, tmp_path / "p.plan", PROFILE, fp16=True, half_io=True, trt=fake)
    assert [c for c in fake.calls if c[0] == "tensor.dtype"] == [
        ("tensor.dtype", "scales", "HALF"),
        ("tensor.dtype", "output", "HALF"),
    ]
    network = fake.networks[-1]
    assert {t.name: t.dtype for t in network.inputs + network.outputs} == {
        "input": "INT64", "input_lengths": "INT64", "scales": "HALF", "output": "HALF"}
    assert fake.calls.index(("tensor.dtype", "output", "HALF")) < fake.calls.index(("build_serialized_network",))
    assert result.half_io


def test_io_types_are_left_alone_without_half_io(tmp_path, onnx_file):
    fake = FakeTensorRT()
    result = build_plan(onnx_file, tmp_path / "p.plan", PROFILE, fp16=True, trt=fake)
    assert not [c for c in fake.calls if c[0] == "tensor.dtype"]
    assert {t.name: t.dtype for t in fake.networks[-1].outputs} == {"output": "FLOAT"}
    assert not result.half_io


def test_half_io_refused_where_tensor_types_cannot_change(tmp_path, onnx_file):
    with pytest.raises(PlanBuildError, match="kept 'scales' as FLOAT: half I/O cannot be set"):
        build_plan(onnx_file, tmp_path / "p.plan", PROFILE, fp16=True, half_io=True,
                   trt=FakeTensorRT(io_types_fixed=True))
    assert not (tmp_path / "p.plan").exists()


def test_fp16_refused_without_the_fp16_builder_flag(tmp_path, onnx_file):
    fake = FakeTensorRT()
    fake.BuilderFlag = type("BuilderFlag", (), {})  # as TensorRT 11, where BuilderFlag.FP16 was removed
    with pytest.raises(PlanBuildError, match="has no FP16 builder flag"):
        build_plan(onnx_file, tmp_path / "p.plan", PROFILE, fp16=True, trt=fake)
    build_plan(onnx_file, tmp_path / "p.plan", PROFILE, fp16=False, trt=fake)  # FP32 still builds
    assert fake.builds == 1


KEY_ARGS = dict(source_sha256="cd" * 32, tensorrt_version="10.9.0.34", compute_capability="8.9", fp16=True,
                half_io=True)


@pytest.mark.parametrize("change", [
    {"compute_capability": "7.5"},
    {"tensorrt_version": "10.10.0.31"},
    {"source_sha256": "ef" * 32},
    {"fp16": False},
    {"half_io": False},
])
def test_plan_key_differs_by_every_field_that_makes_a_plan_valid(change):
    def key(**fields):
        args = {**KEY_ARGS, **fields}
        return plan_key(Path("flow.decoder.estimator.fp32.onnx"), args.pop("source_sha256"), profiles=PROFILE, **args)

    assert key(**change).name != key().name
    assert key(**change).canonical_fields != key().canonical_fields


def test_half_io_is_part_of_the_plan_name_and_manifest(tmp_path, onnx_file):
    outcome = ensure_plan(onnx_file, tmp_path / "cache", PROFILE, fp16=True, half_io=True, compute_capability="8.9",
                          trt=FakeTensorRT(), hasher=FileHasher(None))
    assert "-fp16-halfio-src" in outcome.key.name
    assert json.loads((outcome.path / MANIFEST).read_text())["key"]["io"] == "half"
    assert outcome.value.half_io
