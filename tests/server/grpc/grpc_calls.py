"""Small client helpers for the gRPC tests: stubs, PCM decoding, a call's final status, a request's record."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np

from tests.support import RunningServer, free_port, start_server
from ttspilot.server.grpc.protos import cosyvoice_pb2_grpc, speech_pb2_grpc


@dataclass
class GrpcServed:
    server: RunningServer
    target: str  # host:port of its gRPC
    headers: dict[str, str] = field(default_factory=dict)  # for its HTTP routes (the API key)

    @property
    def url(self) -> str:
        return self.server.url

    def performance(self, request_id: str | None = None) -> dict:
        params = {"request_id": request_id} if request_id else {}
        return httpx.get(self.url + "/performance_info", params=params, headers=self.headers, timeout=10).json()


def start_grpc_server(args: list[str], log_path: Path, headers: dict[str, str] | None = None) -> GrpcServed:
    port = free_port()
    return GrpcServed(start_server(["--grpc_port", str(port), *args], log_path), f"127.0.0.1:{port}", headers or {})


def speech(channel: grpc.Channel) -> speech_pb2_grpc.SpeechStub:
    return speech_pb2_grpc.SpeechStub(channel)


def upstream(channel: grpc.Channel) -> cosyvoice_pb2_grpc.CosyVoiceStub:
    return cosyvoice_pb2_grpc.CosyVoiceStub(channel)


def pcm(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def refusal(call: Iterable[Any]) -> grpc.RpcError:
    """The error a call ends with; fails the test when it succeeds."""
    try:
        list(call)
    except grpc.RpcError as error:
        return error
    raise AssertionError("the call succeeded")


def finished_request(served: GrpcServed, request_id: str, timeout: float = 15.0) -> dict:
    """The request's record on /performance_info once it has ended (the server finishes it after the call)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = served.performance(request_id).get("request")
        if found is not None and found["outcome"] != "running":  # running requests are found too
            return found
        time.sleep(0.05)
    raise AssertionError(f"request {request_id} never finished")


def wait_idle(served: GrpcServed, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served.performance()["pipeline"]["admitted"] == 0:
            return
        time.sleep(0.05)
    raise AssertionError("requests still admitted")
