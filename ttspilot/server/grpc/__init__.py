"""gRPC beside HTTP, on the same event loop, engine, pipeline, admission, limits, stats and metrics.

`server.GrpcServer` serves upstream CosyVoice's `cosyvoice.CosyVoice` (`upstream.py`), ttspilot's own
`ttspilot.v1.Speech` (`speech.py`), `grpc.health.v1` and reflection; `protos/` holds the .proto files and
their committed stubs (`gencode.py` regenerates them). See docs/architecture.md, "gRPC".
"""
