"""Turn request fields from any API family into a validated SynthesisJob.

Every family funnels through `make_job`, so the limits (text length, speed, sample
rate, voice) are the same everywhere and so are their error messages.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from ttspilot.audio import SUPPORTED_SAMPLE_RATES
from ttspilot.config import ServerSettings
from ttspilot.encoders import FORMATS, FormatUnavailable, check_available, fit_rate
from ttspilot.engines.base import Engine, Style
from ttspilot.server.errors import BadRequest
from ttspilot.server.language import has_speakable
from ttspilot.server.pipeline import SynthesisJob

MIN_SPEED, MAX_SPEED = 0.5, 2.0
_KEEP_CONTROLS = frozenset("\n\t\r")


def clean_text(text: str) -> str:
    """Drop control characters and lone surrogates: phonemizers choke on them and nobody can hear them."""
    return "".join(
        ch for ch in text if ch in _KEEP_CONTROLS or unicodedata.category(ch) not in ("Cc", "Cs", "Co", "Cn")
    )


def make_job(
    engine: Engine,
    settings: ServerSettings,
    *,
    text: str,
    voice: str | None,
    speed: float = 1.0,
    sample_rate: int | None = None,
    audio_format: str = "wav",
    stream: bool = False,
    segment_max_length: int | None = None,
    smart_split: bool = True,
    engine_options: dict[str, Any] | None = None,
    style: Style = Style(),
    text_field: str = "text",
    speed_range: tuple[float, float] = (MIN_SPEED, MAX_SPEED),
) -> SynthesisJob:
    """Validate once for every family; `text_field` names the field as that family's clients know it.

    A `style` beyond built-in voices (zero-shot, instruct, ...) is refused (400) by engines that cannot do it.
    """
    engine.capabilities.require(style.mode, engine.name)
    text = clean_text(text)
    if not text.strip():
        raise BadRequest(f"{text_field} is empty: send the words to speak")
    if not has_speakable(text):
        raise BadRequest(f"nothing to speak: {text_field} holds only punctuation and spaces; send letters or digits")
    if len(text) > settings.max_text_length:
        raise BadRequest(
            f"{text_field} is {len(text)} characters; this server accepts at most {settings.max_text_length}", status=413
        )
    if not speed_range[0] <= speed <= speed_range[1]:
        raise BadRequest(f"speed must be between {speed_range[0]} and {speed_range[1]}, got {speed}")
    if sample_rate is not None and sample_rate not in SUPPORTED_SAMPLE_RATES:
        rates = ", ".join(map(str, SUPPORTED_SAMPLE_RATES))
        raise BadRequest(f"sample_rate {sample_rate} is not supported; choose one of {rates}")
    if audio_format not in FORMATS:
        raise BadRequest(f"format {audio_format!r} is not supported; choose one of {', '.join(FORMATS)}")
    try:
        check_available(audio_format)
    except FormatUnavailable as error:
        raise BadRequest(str(error)) from error
    rate = fit_rate(audio_format, sample_rate or settings.output_sample_rate or engine.sample_rate)
    return SynthesisJob(
        text=text,
        voice=engine.resolve_voice(voice),
        speed=speed,
        sample_rate=rate,
        audio_format=audio_format,
        stream=stream,
        segment_max_length=segment_max_length,
        smart_split=smart_split,
        engine_options=(engine_options or {}) | ({} if style == Style() else {"style": style}),
    )
