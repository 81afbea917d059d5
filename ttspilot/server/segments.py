"""Segments for the model: sentence-aware or plain, never longer than one call may be.

A model call's memory grows with its text (Piper VITS on the CPU: about 1.3 MB per character
of prose, several times that for digits), so every segment is cut to `call_max_chars` whatever
the request asks: the split flag only chooses between sentence-aware and plain cutting. Engines
bound their own calls by what really drives memory (Piper: phonemes at the requested speed).
ONNX Runtime's CPU arena keeps the largest call's memory for the next call, so the cap also
bounds what stays resident. Returning that memory after each call instead cost speed on a
200-character call (arena shrinkage per run: 20% slower; arena off: 70% slower and a higher
peak), so the arena stays on.
"""

from __future__ import annotations

import re

from text_split import split_text
from ttspilot.config import ServerSettings

_WHITESPACE = re.compile(r"\s+")


def cut_plainly(text: str, limit: int) -> list[str]:
    """Pieces of at most `limit` characters, cut at the last whitespace that fits, else inside a word."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        spaces = [match.start() for match in _WHITESPACE.finditer(rest, 1, limit + 1)]
        cut = spaces[-1] if spaces else limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def model_segments(
    text: str, *, smart_split: bool, max_length: int, call_max_chars: int, first_segment_max: int | None = None
) -> list[str]:
    """Sentence-aware segments (or plain cuts), each at most `call_max_chars` long."""
    if not smart_split:
        return cut_plainly(text, call_max_chars)
    max_length = min(max_length, call_max_chars)
    first = None if first_segment_max is None else min(first_segment_max, max_length)
    # split_text keeps a protected token (a long number, a URL) whole even past max_length.
    return [piece for segment in split_text(text, max_length, first) for piece in cut_plainly(segment, call_max_chars)]


def request_segments(
    text: str, *, stream: bool, smart_split: bool, max_length: int | None, settings: ServerSettings
) -> list[str]:
    """A request's segments: a stream's are short, its first shorter still, so audio starts sooner; a whole
    response's are long, since nobody hears it before its end and fewer calls make more audio per second.
    `max_length` is the client's own choice where an API has one (upstream's max_text_length)."""
    default = settings.segment_max_length if stream else settings.whole_segment_max_length
    return model_segments(
        text,
        smart_split=smart_split,
        max_length=max_length or default,
        call_max_chars=settings.call_max_chars,
        first_segment_max=settings.first_segment_max if stream else None,
    )
