"""Environment diagnosis for `diagnose_gpu.py`: independent checks, each PASS/WARN/FAIL/SKIP with a fix.

`registry.CHECKS` lists them in report order. Each check is a small function in the module of
its area (system, nvidia, cuda, onnxruntime_check, tensorrt_check, packages, model, network)
that takes its inputs as parameters, so tests feed it recorded NVML, ONNX Runtime and TensorRT
behaviour instead of a GPU. `libraries` reads installed builds from metadata, `probes` runs
what must not load into this process (torch, cuDNN), `capture` collects native logs,
`report` renders text or JSON, and `cli` is the command line.
"""
