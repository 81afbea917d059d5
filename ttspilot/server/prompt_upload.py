"""Prompt recordings uploaded with a request: checked, then kept as a temporary wav while the request runs.

The engine reads the prompt while the audio is made, which for a streamed answer is after the
route has returned. So each temporary file belongs to the request's ASGI call: `RequestFiles`
removes it when that call ends (the last byte sent, the client gone, or an error), and a
recording that fails its checks is never written at all (docs/architecture.md, "Request path").
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile
from fastapi import Request, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from ttspilot.server.errors import BadRequest

MIN_RATE = 16_000  # what CosyVoice's frontend resamples the prompt to
MIN_SECONDS, MAX_SECONDS = 1.0, 30.0
FORMATS = "wav, flac, ogg or mp3"
_SCOPE_KEY = "ttspilot.request_files"


class RequestFiles:
    """ASGI middleware: temporary files a request registers are removed when its call returns."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        files: list[Path] = []
        scope[_SCOPE_KEY] = files
        try:
            await self.app(scope, receive, send)
        finally:
            for path in files:
                path.unlink(missing_ok=True)


def decode_prompt(data: bytes, field: str) -> tuple[np.ndarray, int]:
    """Mono float32 and its rate, or BadRequest naming `field` and the numbers that are wrong.

    Reads at most 30 s of audio, so a small compressed body cannot decode into gigabytes.
    """
    if not data:
        raise BadRequest(f"{field} is empty: upload a recording ({FORMATS})")
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as sound:
            rate = sound.samplerate
            if rate < MIN_RATE:
                raise BadRequest(f"{field} is sampled at {rate} Hz; a voice prompt needs at least {MIN_RATE} Hz")
            audio = sound.read(int(MAX_SECONDS * rate) + 1, dtype="float32", always_2d=True)
            longer = len(audio) > MAX_SECONDS * rate
    except (soundfile.SoundFileError, RuntimeError, ValueError, EOFError) as error:
        raise BadRequest(f"{field} is not a recording this server can read ({FORMATS}): {error}") from None
    if longer:
        raise BadRequest(f"{field} is longer than {MAX_SECONDS:g} s; a voice prompt must be {MIN_SECONDS:g}-"
                         f"{MAX_SECONDS:g} s long")
    mono = audio.mean(axis=1)
    if not np.isfinite(mono).all():
        raise BadRequest(f"{field} holds samples that are not finite numbers (NaN or infinity)")
    return _long_enough(mono, rate, field), rate


def _long_enough(mono: np.ndarray, rate: int, field: str) -> np.ndarray:
    seconds = len(mono) / rate
    if seconds < MIN_SECONDS:
        raise BadRequest(f"{field} is {seconds:.2f} s long; a voice prompt must be {MIN_SECONDS:g}-{MAX_SECONDS:g} s long")
    return mono


def decode_pcm_prompt(data: bytes, rate: int, field: str) -> np.ndarray:
    """Mono float32 from raw 16-bit little-endian PCM at `rate` (upstream's gRPC client sends 16 kHz), checked as
    `decode_prompt` checks a file: BadRequest naming `field` for an empty, odd-sized, too short or too long one."""
    if not data:
        raise BadRequest(f"{field} is empty: send the prompt recording as {rate} Hz mono 16-bit PCM")
    if len(data) % 2:
        raise BadRequest(f"{field} holds {len(data)} bytes, an odd number: 16-bit PCM has two bytes per sample")
    if len(data) // 2 > MAX_SECONDS * rate:
        raise BadRequest(f"{field} is {len(data) / 2 / rate:.1f} s long at {rate} Hz; a voice prompt must be "
                         f"{MIN_SECONDS:g}-{MAX_SECONDS:g} s long")
    mono = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    return _long_enough(mono, rate, field)


def write_prompt(mono: np.ndarray, rate: int, directory: Path | None, files: list[Path]) -> Path:
    """A temporary mono wav in `directory` (None: the system's), listed in `files` for its owner to remove."""
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="ttspilot-prompt-", suffix=".wav", dir=directory)
    os.close(handle)
    path = Path(name)
    files.append(path)  # registered before writing: a failed write is removed too
    soundfile.write(path, np.clip(mono, -1.0, 1.0), rate, subtype="PCM_16")
    return path


async def save_prompt(request: Request, upload: UploadFile, field: str = "prompt_wav") -> Path:
    """Check an uploaded recording (16 kHz or more, 1-30 s, finite) and write it as a mono wav the request owns."""
    data = await upload.read()
    mono, rate = await run_in_threadpool(decode_prompt, data, field)
    directory = request.app.state.ttspilot.settings.upload_dir
    return await run_in_threadpool(write_prompt, mono, rate, directory, request.scope[_SCOPE_KEY])
