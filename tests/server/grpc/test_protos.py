"""The committed stubs match protos/*.proto, and our cosyvoice.proto is upstream's protocol on the wire."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

from ttspilot.engines.cosyvoice.upstream import find_trees
from ttspilot.server.grpc import gencode
from ttspilot.server.grpc.protos import cosyvoice_pb2
from ttspilot.server.grpc.upstream import ROUTE


def test_committed_stubs_are_what_gencode_writes(tmp_path):
    for fresh in gencode.generate(tmp_path):
        committed = gencode.PACKAGE_ROOT / fresh.relative_to(tmp_path)
        assert committed.read_bytes() == fresh.read_bytes(), \
            f"{committed} is stale: run python -m ttspilot.server.grpc.gencode and commit the result"


def _wire(file: descriptor_pb2.FileDescriptorProto) -> dict:
    """What reaches the wire or a method's path: package, services and their methods, fields by number."""
    return {
        "package": file.package,
        "services": {(s.name, m.name, m.input_type, m.output_type, m.client_streaming, m.server_streaming)
                     for s in file.service for m in s.method},
        "messages": {(message.name, field.number, field.name, field.type, field.label, field.type_name,
                      field.oneof_index if field.HasField("oneof_index") else None)
                     for message in file.message_type for field in message.field},
        "oneofs": {(message.name, oneof.name) for message in file.message_type for oneof in message.oneof_decl},
    }


@pytest.mark.parametrize("tree", find_trees() or [pytest.param(None, marks=pytest.mark.skip(
    reason="no CosyVoice tree: no ../shared/upstream/CosyVoice-* and TTSPILOT_COSYVOICE_TREES unset"))],
    ids=lambda tree: getattr(tree, "name", None))
def test_our_cosyvoice_proto_is_upstreams_on_the_wire(tree: Path, tmp_path):
    proto_dir = tree / "runtime" / "python" / "grpc"
    out = tmp_path / "upstream.pb"
    assert protoc.main(["protoc", f"-I{proto_dir}", f"--descriptor_set_out={out}",
                        str(proto_dir / "cosyvoice.proto")]) == 0
    theirs = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    ours = descriptor_pb2.FileDescriptorProto()
    cosyvoice_pb2.DESCRIPTOR.CopyToProto(ours)
    assert _wire(ours) == _wire(theirs)
    assert ROUTE == f"/{theirs.package}.{theirs.service[0].name}/{theirs.service[0].method[0].name}"
