"""One Piper server with gRPC on for the gRPC tests here: 2 admitted requests (backpressure is cheap to reach) and
64 KiB messages (the size limit too)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from tests.server.grpc.grpc_calls import GrpcServed, start_grpc_server
from tests.support import stop_server


@pytest.fixture(scope="package")
def grpc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcServed]:
    served = start_grpc_server(["--max_queue", "2", "--max_body_bytes", "65536"], tmp_path_factory.mktemp("grpc") / "server.log")
    yield served
    stop_server(served.server)


@pytest.fixture(scope="package")
def channel(grpc_server: GrpcServed) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(grpc_server.target) as opened:
        yield opened
