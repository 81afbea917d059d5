"""Upstream CosyVoice's own gRPC client (runtime/python/grpc/client.py), run unchanged against our server.

Its stubs are generated from upstream's own cosyvoice.proto into a temporary folder on its PYTHONPATH;
it imports torch, torchaudio and the tree's cosyvoice package, so it runs in the CosyVoice environment.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import soundfile
from grpc_tools import protoc

GRPC_DIR = Path("runtime") / "python" / "grpc"


def upstream_stubs(tree: Path, out: Path) -> Path:
    """cosyvoice_pb2.py and cosyvoice_pb2_grpc.py from the tree's proto, in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    proto_dir = tree / GRPC_DIR
    code = protoc.main(["protoc", f"-I{proto_dir}", f"--python_out={out}", f"--grpc_python_out={out}",
                        str(proto_dir / "cosyvoice.proto")])
    assert code == 0, f"protoc failed on {proto_dir / 'cosyvoice.proto'}"
    return out


def run_upstream_client(python: Path, tree: Path, target: str, work: Path, *args: str) -> Path:
    """Run client.py with `args` against `target` (host:port); the wav it wrote."""
    host, port = target.rsplit(":", 1)
    wav = work / "upstream_client.wav"
    stubs = upstream_stubs(tree, work / "stubs")
    result = subprocess.run(
        [str(python), str(tree / GRPC_DIR / "client.py"), "--host", host, "--port", port, "--tts_wav", str(wav), *args],
        env={**os.environ, "PYTHONPATH": str(stubs)}, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, f"upstream's client failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return wav


def read_client_wav(path: Path) -> tuple[np.ndarray, int]:
    """The client's wav and its rate (the client hard-codes 22050).

    The client hands torchaudio.save its int16 sample values unscaled; torchaudio from 2.9 on (torchcodec)
    writes 16-bit PCM clipped to full scale, so every sample that is not silence reads as about +-1: the
    length and the silences are ours, the loudness is not (upstream's client, not our server).
    """
    return soundfile.read(path, dtype="float32")
