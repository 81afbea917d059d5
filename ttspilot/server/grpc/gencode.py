"""Regenerate the committed Python stubs of protos/*.proto (needs grpcio-tools from requirements-dev.txt).

    python -m ttspilot.server.grpc.gencode

The stubs are committed, not built at install: the default install has no build step and no protoc,
and tests/server/grpc/test_gencode.py fails when a .proto changed without this being run. The pinned
grpcio-tools fixes protoc's version, so the output is the same on every machine; the stubs need a
protobuf runtime at least as new as that protoc's (requirements.txt states it).
"""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[3]  # the folder that holds ttspilot/, protoc's include root
PROTOS = Path(__file__).resolve().parent / "protos"


def proto_files() -> list[Path]:
    return sorted(PROTOS.glob("*.proto"))


def generate(out: Path = PACKAGE_ROOT) -> list[Path]:
    """Write <name>_pb2.py and <name>_pb2_grpc.py for every proto under `out` (same relative paths); return them."""
    from grpc_tools import protoc  # dev-only: imported here so the server never needs it

    sources = [str(path.relative_to(PACKAGE_ROOT)) for path in proto_files()]
    code = protoc.main(["protoc", f"-I{PACKAGE_ROOT}", f"--python_out={out}", f"--grpc_python_out={out}", *sources])
    if code != 0:
        raise RuntimeError(f"protoc failed with exit code {code} on {', '.join(sources)}")
    made = PROTOS.relative_to(PACKAGE_ROOT)
    return sorted(out / made / f"{path.stem}{suffix}" for path in proto_files() for suffix in ("_pb2.py", "_pb2_grpc.py"))


if __name__ == "__main__":
    for path in generate():
        print(path, file=sys.stderr)
