"""The web page for people: `/` and `/ui` answer its HTML, `/ui/<file>` its scripts and style.

Static files from the package (no build step, no CDN: operators run air-gapped boxes); they are open
without the API key, since they hold no data: the page asks for the key and sends it with each API call.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
PAGE_PATHS = ("/", "/ui")
ASSET_PREFIX = "/ui/"

router = APIRouter(include_in_schema=False)


@router.get("/")
@router.get("/ui")
async def page() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def install_web(app: FastAPI) -> None:
    """The page's routes, and its assets mounted under /ui/ (Starlette refuses paths that leave the folder)."""
    app.include_router(router)
    app.mount(ASSET_PREFIX.rstrip("/"), StaticFiles(directory=WEB_DIR, html=True), name="ui")
