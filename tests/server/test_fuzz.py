"""Schemathesis against the server's own OpenAPI schema: no 500s, documented statuses, types and bodies."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import start_server, stop_server

pytestmark = pytest.mark.integration

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_schemathesis_finds_no_failure(tmp_path):
    server = start_server(["--max_text_length", "300"], tmp_path / "server.log")
    try:
        cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
        result = subprocess.run(
            [cli, "run", server.url + "/openapi.json", "--checks", CHECKS, "--max-examples", "8",
             "--phases", "examples,coverage,fuzzing", "--workers", "1", "--seed", "1"],
            capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stdout[-4000:]
        assert server.process.poll() is None, "the server died under fuzzing"
        assert "500" not in server.log().split("Application startup complete")[-1].split(" Internal Server Error")[0][-3:]
    finally:
        stop_server(server)
