"""A request's `Style` (zero-shot, cross-lingual, instruct), checked before any audio is sent.

A streamed answer cannot become a 400 once its first byte is out, so what the engine would
refuse about a style (the mode itself, a missing transcript or instruction, a voice of the wrong
kind) is refused here, while the request can still get a clear 4xx (docs/architecture.md, "Request path").
"""

from __future__ import annotations

from pathlib import Path

from ttspilot.engines.base import FEATURE_NAMES, Engine, Mode, Style, unsupported
from ttspilot.server.errors import BadRequest


def voice_kind(engine: Engine, voice: str | None) -> tuple[str, str]:
    """(resolved id, builtin | registered); VoiceNotFound (404) for an unknown voice."""
    resolved = engine.resolve_voice(voice)
    return resolved, next(v.kind for v in engine.voices() if v.id == resolved)


def prompt_style(
    engine: Engine,
    mode: Mode,
    *,
    voice: str | None,
    prompt_wav: Path | None = None,
    prompt_text: str = "",
    instruct_text: str = "",
    voice_field: str = "spk_id",
) -> Style:
    """The style for `mode`; a prompt mode takes the uploaded `prompt_wav` or else a registered voice."""
    engine.capabilities.require(mode, engine.name)
    if mode in ("instruct", "instruct2") and not instruct_text.strip():
        raise BadRequest("instruct_text is empty: say how to speak (style, emotion, speed)")
    if mode == "zero_shot" and prompt_wav is not None and not prompt_text.strip():
        raise BadRequest("prompt_text is empty: send the exact transcript of prompt_wav")
    resolved, kind = voice_kind(engine, voice)
    if mode == "instruct" and kind != "builtin":
        raise BadRequest(f"{FEATURE_NAMES[mode]}: name a built-in voice in {voice_field} ({resolved!r} is registered)")
    if mode in ("zero_shot", "cross_lingual", "instruct2") and prompt_wav is None and kind != "registered":
        raise BadRequest(f"{FEATURE_NAMES[mode]}: upload prompt_wav or name a registered voice in {voice_field} "
                         f"({resolved!r} is built in; POST /voices registers one)")
    return Style(mode, prompt_text if prompt_wav is not None else "", prompt_wav, instruct_text)


def instruction_style(engine: Engine, voice: str | None, instruct_text: str, voice_field: str = "voice") -> Style:
    """Instructions with a registered voice (instruct2) or a built-in one (instruct), whichever the engine has.

    UnsupportedFeature when the engine follows no instructions, BadRequest when the voice is of the other kind.
    """
    capabilities = engine.capabilities
    if not (capabilities.instruct or capabilities.instruct2):
        raise unsupported("instruct2", engine.name)
    _, kind = voice_kind(engine, voice)
    mode: Mode = "instruct2" if capabilities.instruct2 and (kind == "registered" or not capabilities.instruct) \
        else "instruct"
    return prompt_style(engine, mode, voice=voice, instruct_text=instruct_text, voice_field=voice_field)
