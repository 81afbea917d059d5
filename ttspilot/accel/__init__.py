"""Acceleration backends: ONNX Runtime sessions per tier, TensorRT plans, and their caches.

- onnx_session: `open_session(model_path, config, cache_dir)`, the per-tier session factory and its report
- providers: pure provider lists/options (TensorRT, CUDA, CPU), shape profiles, session settings
- optimized_graph: the graph optimized ahead of time (load_jit; always used on the CPU when valid)
- ort_tensorrt: the TensorRT execution provider's engine cache as a validated cache entry
- trt: ONNX -> TensorRT plan with the tensorrt API (for engines that run plans directly)
- cache: key -> entry dir + manifest + file lock + atomic publish, shared by all of the above
- fingerprint, gpu: what makes an artifact valid here (hashes, CPU flags, compute capability, versions)
- precompile: the logic behind precompile_trt.py
"""
