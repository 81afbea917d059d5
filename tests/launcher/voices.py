"""Piper-shaped ONNX voices built in the test, for launcher failure cases."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

from ttspilot.engines.piper import embedded_voice


def write_silent_voice(folder: Path, name: str = "silent") -> Path:
    """A valid model with Piper's inputs that answers 256 zero samples per phoneme: a canary must reject it."""
    return _write_frame_voice(folder, name, [0.0] * 256)


def write_overdriven_voice(folder: Path, name: str = "overdriven") -> Path:
    """A model whose every sample is at full scale, like an FP16 overflow the engine clipped: canaries must reject it."""
    return _write_frame_voice(folder, name, [1.0, -1.0] * 128)


def _write_frame_voice(folder: Path, name: str, frame: list[float]) -> Path:
    """A valid model with Piper's inputs that answers `frame` (256 samples) once per phoneme."""
    nodes = [
        helper.make_node("Shape", ["input"], ["shape"]),
        helper.make_node("Gather", ["shape", "one"], ["phonemes"], axis=0),
        helper.make_node("Concat", ["ones3", "phonemes"], ["repeats"], axis=0),
        helper.make_node("Tile", ["frame", "repeats"], ["output"]),
    ]
    initializers = [
        helper.make_tensor("one", TensorProto.INT64, [1], [1]),
        helper.make_tensor("ones3", TensorProto.INT64, [3], [1, 1, 1]),
        helper.make_tensor("frame", TensorProto.FLOAT, [1, 1, 1, len(frame)], frame),
    ]
    graph = helper.make_graph(
        nodes,
        f"{name}_voice",
        [
            helper.make_tensor_value_info("input", TensorProto.INT64, ["batch", "phonemes"]),
            helper.make_tensor_value_info("input_lengths", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 1, 1, "samples"])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.onnx"
    onnx.save(model, path)
    (folder / f"{name}.onnx.json").write_text(embedded_voice().config.read_text())
    return path


def write_broken_voice(folder: Path, name: str = "broken") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.onnx"
    path.write_bytes(b"this is not an ONNX model")
    (folder / f"{name}.onnx.json").write_text(embedded_voice().config.read_text())
    return path
