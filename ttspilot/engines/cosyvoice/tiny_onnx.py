"""Tiny ONNX stand-ins for the two ONNX models a CosyVoice folder ships besides its weights.

The frontends only need the right signatures: `campplus.onnx` turns a kaldi fbank into a speaker
embedding, the speech tokenizer turns a whisper log-mel into speech token ids. Each stand-in is a
handful of ONNX operators built with `onnx.helper`, so the folder stays small and loads on the CPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OPSET = 18
IR_VERSION = 8  # readable by every onnxruntime the trees accept
SPEAKER_EMBEDDING_DIM = 192
FBANK_DIM = 80
WHISPER_MELS = 128
TOKENS_PER_MEL_FRAME = 4  # whisper's 100 Hz mel frames -> 25 Hz speech tokens


def write_campplus(path: Path, seed: int) -> None:
    """fbank (1, T, 80) float32 -> embedding (1, 192): the mean over time through a fixed random projection."""
    import onnx
    from onnx import TensorProto, helper

    weights = np.random.RandomState(seed).randn(FBANK_DIM, SPEAKER_EMBEDDING_DIM).astype(np.float32) * 0.1
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["input", "time_axis"], ["mean"], keepdims=0),
         helper.make_node("MatMul", ["mean", "projection"], ["embedding"])],
        "campplus_stand_in",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, "T", FBANK_DIM])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, SPEAKER_EMBEDDING_DIM])],
        [helper.make_tensor("time_axis", TensorProto.INT64, [1], [1]),
         helper.make_tensor("projection", TensorProto.FLOAT, weights.shape, weights.flatten())])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION), path)


def write_speech_tokenizer(path: Path, speech_tokens: int) -> None:
    """feats (1, 128, T) float32 + feats_length (1,) int32 -> tokens (1, ceil(T/4)) int32 in [0, speech_tokens).

    The frontends feed the length as a second input and ONNX Runtime rejects an input the graph does
    not declare, so the graph takes it and passes it through to a second output.
    """
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("ReduceMean", ["feats", "axis_1"], ["per_frame"], keepdims=0),  # (1, T)
        helper.make_node("Slice", ["per_frame", "start", "end", "axis_1", "step"], ["strided"]),
        helper.make_node("Abs", ["strided"], ["magnitude"]),
        helper.make_node("Mul", ["magnitude", "scale"], ["scaled"]),
        helper.make_node("Cast", ["scaled"], ["whole"], to=TensorProto.INT64),
        helper.make_node("Mod", ["whole", "vocabulary"], ["ids"]),
        helper.make_node("Cast", ["ids"], ["tokens"], to=TensorProto.INT32),
        helper.make_node("Identity", ["feats_length"], ["tokens_length"]),
    ]
    constants = [
        helper.make_tensor("axis_1", TensorProto.INT64, [1], [1]),
        helper.make_tensor("start", TensorProto.INT64, [1], [0]),
        helper.make_tensor("end", TensorProto.INT64, [1], [2 ** 62]),
        helper.make_tensor("step", TensorProto.INT64, [1], [TOKENS_PER_MEL_FRAME]),
        helper.make_tensor("scale", TensorProto.FLOAT, [], [1000.0]),
        helper.make_tensor("vocabulary", TensorProto.INT64, [], [speech_tokens]),
    ]
    graph = helper.make_graph(
        nodes, "speech_tokenizer_stand_in",
        [helper.make_tensor_value_info("feats", TensorProto.FLOAT, [1, WHISPER_MELS, "T"]),
         helper.make_tensor_value_info("feats_length", TensorProto.INT32, [1])],
        [helper.make_tensor_value_info("tokens", TensorProto.INT32, [1, "N"]),
         helper.make_tensor_value_info("tokens_length", TensorProto.INT32, [1])],
        constants)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION), path)
