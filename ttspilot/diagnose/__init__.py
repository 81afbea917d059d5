"""Environment diagnosis for `diagnose_gpu.py`: independent checks, each PASS/WARN/FAIL/SKIP with a fix.

`registry.CHECKS` lists them in report order; each check is a small function in the module of
its area (system, nvidia, cuda, onnxruntime_check, tensorrt_check, packages, model, network)
that takes its inputs as parameters, so tests feed it recorded NVML, ONNX Runtime and
TensorRT behaviour instead of a GPU.
"""
