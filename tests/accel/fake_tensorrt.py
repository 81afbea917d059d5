"""FakeTensorRT: a stand-in for the `tensorrt` module, for checking the build sequence without a GPU.

It implements only the TensorRT 10 Python API surface `ttspilot.accel.trt.build_plan` uses,
records every call in `calls`, and can be told to fail at parse or build time. It checks
nothing about real TensorRT behaviour beyond the call sequence and arguments.

Its network's inputs and outputs are given (`inputs`, `outputs`, `dtypes`) or, with
`read_onnx=True`, read from the ONNX file by the onnx package the way TensorRT's parser declares
them: graph inputs that are not initializers, a named or unknown dimension as -1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

# ONNX TensorProto element type -> TensorRT DataType member name, for the types the fake meets.
_ONNX_TYPES = {1: "FLOAT", 10: "HALF", 6: "INT32", 7: "INT64", 9: "BOOL"}


def onnx_io(path: str | Path) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]], dict[str, str]]:
    """(inputs, outputs, dtypes) of an ONNX file as TensorRT's parser declares them."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    initializers = {tensor.name for tensor in graph.initializer}

    def shape(value):
        return tuple(d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim)

    inputs = {v.name: shape(v) for v in graph.input if v.name not in initializers}
    outputs = {v.name: shape(v) for v in graph.output}
    dtypes = {v.name: _ONNX_TYPES[v.type.tensor_type.elem_type] for v in [*graph.input, *graph.output]
              if v.name in inputs or v.name in outputs}
    return inputs, outputs, dtypes


class FakeTensorRT:
    __version__ = "10.9.0.34"

    def __init__(
        self,
        *,
        inputs: Mapping[str, Sequence[int]] | None = None,
        outputs: Mapping[str, Sequence[int]] | None = None,
        dtypes: Mapping[str, str] | None = None,
        read_onnx: bool = False,
        io_types_fixed: bool = False,
        parse_errors: Sequence[str] = (),
        plan: bytes | None = b"SERIALIZED-PLAN",
        phases: Sequence[tuple[str, str | None, int]] = (
            ("Building engine", None, 3),
            ("Tactic search", "Building engine", 2),
        ),
        fast_fp16: bool = True,
        profile_index: int = 0,
    ):
        self.calls: list[tuple] = []
        self.inputs = dict(inputs or {"input": (-1, -1), "input_lengths": (-1,), "scales": (3,)})
        self.outputs = dict(outputs or {"output": (1, 1, -1)})
        self.dtypes = dict(dtypes if dtypes is not None else {"input": "INT64", "input_lengths": "INT64"})
        self.read_onnx = read_onnx
        self.io_types_fixed = io_types_fixed  # as TensorRT 11: a parsed tensor's type cannot change
        self.networks: list[_Network] = []
        self.parse_errors = list(parse_errors)
        self.plan = plan
        self.phases = list(phases)
        self.fast_fp16 = fast_fp16
        self.profile_index = profile_index
        self.builds = 0
        fake = self

        class Logger:
            WARNING = "WARNING"

            def __init__(self, severity):
                fake.calls.append(("Logger", severity))

        class MemoryPoolType:
            WORKSPACE = "WORKSPACE"

        class BuilderFlag:
            FP16 = "FP16"

        class DataType:
            FLOAT = "FLOAT"
            HALF = "HALF"
            INT32 = "INT32"
            INT64 = "INT64"
            BOOL = "BOOL"

        class IProgressMonitor:
            def __init__(self):
                fake.calls.append(("IProgressMonitor.__init__",))

        self.Logger = Logger
        self.MemoryPoolType = MemoryPoolType
        self.BuilderFlag = BuilderFlag
        self.DataType = DataType
        self.IProgressMonitor = IProgressMonitor
        self.Builder = lambda logger: _Builder(fake, logger)
        self.OnnxParser = lambda network, logger: _Parser(fake, network, logger)


class _Tensor:
    def __init__(self, fake, name, shape, dtype):
        self.fake = fake
        self.name = name
        self.shape = tuple(shape)
        self._dtype = dtype

    @property
    def dtype(self):
        return self._dtype

    @dtype.setter
    def dtype(self, value):
        self.fake.calls.append(("tensor.dtype", self.name, value))
        if not self.fake.io_types_fixed:
            self._dtype = value


class _Network:
    def __init__(self, fake: FakeTensorRT):
        self.fake = fake
        self.inputs: list[_Tensor] = []
        self.outputs: list[_Tensor] = []
        fake.networks.append(self)

    def parsed_from(self, path):
        fake = self.fake
        if fake.read_onnx:
            fake.inputs, fake.outputs, fake.dtypes = onnx_io(path)

        def tensors(shapes):
            return [_Tensor(fake, name, shape, fake.dtypes.get(name, "FLOAT")) for name, shape in shapes.items()]

        self.inputs, self.outputs = tensors(fake.inputs), tensors(fake.outputs)

    @property
    def num_inputs(self):
        return len(self.inputs)

    def get_input(self, index):
        return self.inputs[index]

    @property
    def num_outputs(self):
        return len(self.outputs)

    def get_output(self, index):
        return self.outputs[index]


class _Parser:
    def __init__(self, fake, network, logger):
        self.fake, self.network = fake, network
        fake.calls.append(("OnnxParser",))

    def parse_from_file(self, path):
        self.fake.calls.append(("parse_from_file", path))
        if self.fake.parse_errors:
            return False
        self.network.parsed_from(Path(path))
        return True

    @property
    def num_errors(self):
        return len(self.fake.parse_errors)

    def get_error(self, index):
        return self.fake.parse_errors[index]


class _Profile:
    def __init__(self, fake):
        self.fake = fake
        self.shapes = {}

    def set_shape(self, name, min, opt, max):  # TensorRT's keyword names
        self.fake.calls.append(("profile.set_shape", name, tuple(min), tuple(opt), tuple(max)))
        self.shapes[name] = (tuple(min), tuple(opt), tuple(max))


class _TimingCache:
    def __init__(self, blob: bytes):
        self.blob = bytes(blob)

    def serialize(self):
        return self.blob + b"+timing"


class _Config:
    def __init__(self, fake):
        self.fake = fake
        self.flags = set()
        self.pools = {}
        self.profiles = []
        self.progress_monitor = None
        self.timing_cache = None

    def set_memory_pool_limit(self, pool, size):
        self.fake.calls.append(("config.set_memory_pool_limit", pool, size))
        self.pools[pool] = size

    def set_flag(self, flag):
        self.fake.calls.append(("config.set_flag", flag))
        self.flags.add(flag)

    def add_optimization_profile(self, profile):
        self.fake.calls.append(("config.add_optimization_profile",))
        self.profiles.append(profile)
        return self.fake.profile_index

    def create_timing_cache(self, blob):
        self.fake.calls.append(("config.create_timing_cache", bytes(blob)))
        return _TimingCache(blob)

    def set_timing_cache(self, cache, ignore_mismatch):
        self.fake.calls.append(("config.set_timing_cache", ignore_mismatch))
        self.timing_cache = cache

    def get_timing_cache(self):
        return self.timing_cache


class _Builder:
    def __init__(self, fake, logger):
        self.fake = fake
        fake.calls.append(("Builder",))

    @property
    def platform_has_fast_fp16(self):
        return self.fake.fast_fp16

    def create_network(self, flags):
        self.fake.calls.append(("create_network", flags))
        return _Network(self.fake)

    def create_builder_config(self):
        self.fake.calls.append(("create_builder_config",))
        return _Config(self.fake)

    def create_optimization_profile(self):
        self.fake.calls.append(("create_optimization_profile",))
        return _Profile(self.fake)

    def build_serialized_network(self, network, config):
        self.fake.calls.append(("build_serialized_network",))
        self.fake.builds += 1
        monitor = config.progress_monitor
        if monitor is not None:
            for name, parent, steps in self.fake.phases:
                monitor.phase_start(name, parent, steps)
                for step in range(steps):
                    if not monitor.step_complete(name, step):
                        monitor.phase_finish(name)
                        return None
                monitor.phase_finish(name)
        return self.fake.plan
