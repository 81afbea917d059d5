"""Registered voices: POST /voices clones one from a recording, DELETE /voices/{id} forgets it.

Listing stays where each family has it (/list_voices, /v1/audio/voices), with each voice's `kind`.
Registration runs the model (seconds), so it runs on the synthesis pool and takes its turn with
synthesis instead of holding the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from ttspilot.server.errors import ERROR_RESPONSES, BadRequest
from ttspilot.server.pipeline import SynthesisTimeout
from ttspilot.server.prompt_upload import save_prompt
from ttspilot.server.state import ServerState

log = logging.getLogger(__name__)
router = APIRouter(tags=["voices"], responses=ERROR_RESPONSES)


@router.post("/voices", status_code=201, summary="Register a voice cloned from a recording and its transcript")
async def register_voice(
    request: Request,
    voice_id: Annotated[str, Form(alias="id", description="the new voice's id: letters, digits, '_', '-', '.'")],
    prompt_text: Annotated[str, Form(description="exact transcript of prompt_wav")],
    prompt_wav: Annotated[UploadFile, File(description="the voice's recording: 16 kHz or more, 1-30 s")],
) -> JSONResponse:
    state: ServerState = request.app.state.ttspilot
    state.engine.capabilities.require("voice_registration", state.engine.name)
    if not prompt_text.strip():
        raise BadRequest("prompt_text is empty: send the exact transcript of prompt_wav")
    wav = await save_prompt(request, prompt_wav)
    loop = asyncio.get_running_loop()
    registering = loop.run_in_executor(state.pipeline.executor, state.engine.register_voice, voice_id, wav,
                                       prompt_text)
    try:
        voice = await asyncio.wait_for(registering, timeout=state.settings.request_timeout)
    except asyncio.TimeoutError:  # not yet the builtin TimeoutError on Python 3.10
        raise SynthesisTimeout(f"registering took longer than {state.settings.request_timeout:g} s") from None
    log.info("voice %s registered", voice.id)
    return JSONResponse(asdict(voice), status_code=201, headers={"Location": f"/voices/{voice.id}"})


@router.delete("/voices/{voice_id}", status_code=204, summary="Delete a registered voice")
async def delete_voice(request: Request, voice_id: str) -> Response:
    state: ServerState = request.app.state.ttspilot
    state.engine.capabilities.require("voice_registration", state.engine.name)
    state.engine.remove_voice(voice_id)
    log.info("voice %s deleted", voice_id)
    return Response(status_code=204)
