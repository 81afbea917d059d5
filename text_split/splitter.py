"""Packing: choose which cut points become segment boundaries.

Paragraphs are always separate. Inside a paragraph, each segment takes as much
text as fits in the limit, ending at the strongest kind of cut available in
that window (the last one of that kind, so short sentences are merged).
"""

from __future__ import annotations

from text_split.boundaries import Cut, Level
from text_split.chars import CONTENT_CHAR
from text_split.cut_index import CutIndex

# Levels a segment may end on inside a paragraph, best first.
_PREFERENCE = (
    Level.SENTENCE,
    Level.CLAUSE,
    Level.SPACE,
    Level.CHARACTER,
    Level.ABBREVIATION,
    Level.WORD,
)
_FAST_START = (Level.CLAUSE, Level.SENTENCE)


def split_text(text: str, max_length: int = 100, first_segment_max: int | None = None) -> list[str]:
    """Split ``text`` into segments of at most ``max_length`` characters for synthesis.

    See the package docstring for the rules; ``split_spans`` gives the offsets.
    """
    return [text[start:end] for start, end in split_spans(text, max_length, first_segment_max)]


def split_spans(text: str, max_length: int = 100, first_segment_max: int | None = None) -> list[tuple[int, int]]:
    """The (start, end) offsets of the segments ``split_text`` returns.

    Spans are increasing and non-overlapping and only whitespace lies outside
    them, so a caller can map audio back to the text.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    _check_limit("max_length", max_length)
    if first_segment_max is not None:
        _check_limit("first_segment_max", first_segment_max)
    start = len(text) - len(text.lstrip())
    end = len(text.rstrip())
    if start >= end:
        return []
    if CONTENT_CHAR.search(text) is None:
        return [(start, end)]  # only punctuation: there is no word to attach it to
    index = CutIndex(text)
    limit = max_length if first_segment_max is None else min(first_segment_max, max_length)
    fast_start = first_segment_max is not None
    spans: list[tuple[int, int]] = []
    for paragraph_end in [*index.paragraph_breaks(), Cut(end, end)]:
        while True:
            cut = _next_cut(index, start, paragraph_end.left, limit, fast_start)
            spans.append((start, cut.left))
            limit, fast_start = max_length, False
            if cut.left >= paragraph_end.left:
                break
            start = cut.right
        start = paragraph_end.right
    return spans


def _next_cut(index: CutIndex, start: int, paragraph_end: int, limit: int, fast_start: bool) -> Cut:
    """Where the segment that starts at ``start`` ends."""
    if fast_start:
        cut = index.first_cut(_FAST_START, start, min(start + limit, paragraph_end))
        if cut is not None:
            return cut
    if paragraph_end - start <= limit:
        return Cut(paragraph_end, paragraph_end)
    for level in _PREFERENCE:
        cut = index.last_cut(level, start, start + limit)
        if cut is not None:
            return cut
    # Nothing fits: an unbreakable token runs past the limit and stands alone.
    cut = index.first_cut(_PREFERENCE, start + limit, paragraph_end)
    return cut if cut is not None else Cut(paragraph_end, paragraph_end)


def _check_limit(name: str, value: object) -> None:
    """Reject limits that are not positive integers, naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
