"""The newest benchmark results, read-only: GET /benchmark/latest (its results.json) and its chart.

benchmark_performance.py writes each run to `<benchmark_dir>/<timestamp>/` (results.csv, results.json,
chart.png); the server only reads the newest of those folders, so an operator sees on the web page
what the benchmark measured on this machine without a shell. Nothing a client sends names a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from ttspilot.server.errors import ERROR_RESPONSES, BadRequest
from ttspilot.server.state import ServerState

router = APIRouter(tags=["benchmark"], responses=ERROR_RESPONSES)
RESULTS, CHART = "results.json", "chart.png"


def latest_run(benchmark_dir: Path) -> Path:
    """The folder whose results.json was written last; BadRequest 404 when there is none."""
    runs = [results.parent for results in benchmark_dir.glob(f"*/{RESULTS}") if results.is_file()]
    if not runs:
        raise BadRequest(f"no benchmark results in {benchmark_dir}: run benchmark_performance.py "
                         "(or start the server with --benchmark_dir where it wrote them)", status=404)
    return max(runs, key=lambda run: (run / RESULTS).stat().st_mtime)


@router.get("/benchmark/latest", summary="The newest benchmark_performance.py results (table rows, recommendation)")
async def benchmark_latest(request: Request) -> dict[str, Any]:
    state: ServerState = request.app.state.ttspilot
    run = latest_run(state.settings.benchmark_dir)
    summary = json.loads((run / RESULTS).read_text())
    chart = "/benchmark/latest/chart.png" if (run / CHART).is_file() else None
    return {**summary, "folder": str(run), "chart": chart}


@router.get("/benchmark/latest/chart.png", summary="The newest benchmark's chart (PNG)",
            responses={200: {"content": {"image/png": {}}}})
async def benchmark_chart(request: Request) -> FileResponse:
    state: ServerState = request.app.state.ttspilot
    chart = latest_run(state.settings.benchmark_dir) / CHART
    if not chart.is_file():
        raise BadRequest(f"the newest benchmark in {chart.parent} has no chart (matplotlib was not installed)",
                         status=404)
    return FileResponse(chart, media_type="image/png")
