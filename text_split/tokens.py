"""Protected tokens: spans of text that no cut may fall inside.

Numbers (3.14, 1,000,000, 12:30, 2024.05.01, v1.2.3), URLs, e-mail addresses,
domains and file names are read as one unit, so cutting them would garble the
speech. Abbreviations and initials are not protected spans, but their period
does not end a sentence (``non_terminal_period``).
"""

from __future__ import annotations

import re
from bisect import bisect_left

from text_split.chars import CONTENT_CHAR

# Each pattern starts with a look-behind so that an attempt can only begin at
# the start of a run of its characters: scanning stays linear in the text.
_URL = re.compile(r"(?<![A-Za-z0-9])(?:https?://|ftp://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
_DOTTED = re.compile(
    r"(?<![A-Za-z0-9_.\-])(?P<host>[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)+)"
    r"(?:/[A-Za-z0-9\-._~%/?#=&+]*)?"
)
# The last label of a domain or the extension of a file name: "com", "pdf", "gz".
_SUFFIX = re.compile(r"[A-Za-z][A-Za-z0-9]+")
# Two or more digits, possibly with inner separators: 12, 3.14, 1,000, 12:30.
# finditer never starts a match inside a run of digits, so no look-behind.
_NUMBER = re.compile(r"[0-9０-９](?:[.,:/\-–]?[0-9０-９])+")
_VERSION_PREFIX = re.compile(r"(?<![A-Za-z])[vV]\Z")

ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "e.g", "i.e", "fig", "inc", "ltd", "jr", "sr"}
)
_WORD_BEFORE_PERIOD = re.compile(r"[A-Za-z][A-Za-z.]{0,7}\Z")
_INITIALS = re.compile(r"[A-Z](?:\.[A-Z])*")
_LIST_NUMBER = re.compile(r"(?m)^[ \t]*[0-9]{1,3}\Z")


def protected_spans(text: str) -> list[tuple[int, int]]:
    """Sorted, disjoint (start, end) spans of the protected tokens in ``text``.

    Each span starts and ends with a letter or digit, so punctuation around a
    token (a final period, a closing bracket) stays outside it.
    """
    found = [_trimmed(text, *match.span()) for pattern in (_URL, _EMAIL) for match in pattern.finditer(text)]
    found.extend(
        _trimmed(text, *match.span())
        for match in _DOTTED.finditer(text)
        if _SUFFIX.fullmatch(match["host"].rpartition(".")[2])
    )
    for match in _NUMBER.finditer(text):
        start, end = match.span()
        found.append((start - 1 if _VERSION_PREFIX.search(text, max(0, start - 2), start) else start, end))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if end - start < 2:
            continue
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink a span to its first and last content characters."""
    while start < end and not CONTENT_CHAR.match(text, start):
        start += 1
    while end > start and not CONTENT_CHAR.match(text, end - 1):
        end -= 1
    return start, end


class ProtectedSpans:
    """The protected spans of one text, searchable by position."""

    def __init__(self, text: str) -> None:
        spans = protected_spans(text)
        self._starts = [start for start, _ in spans]
        self._ends = [end for _, end in spans]

    def around(self, pos: int) -> tuple[int, int] | None:
        """The span that position ``pos`` (between two characters) lies strictly inside."""
        index = bisect_left(self._starts, pos) - 1
        if index >= 0 and self._ends[index] > pos:
            return self._starts[index], self._ends[index]
        return None


def non_terminal_period(text: str, dot: int, next_start: int) -> bool:
    """True when the period at ``text[dot]`` does not end a sentence.

    That is the period of an abbreviation (Mr., e.g., etc.; "No." only before a
    number), of an initial (J., U.S.A.) or of a list number at a line start
    ("1. "). ``next_start`` is where the following word starts.
    """
    if text[dot - 1].isdigit():
        return _LIST_NUMBER.search(text, max(0, dot - 8), dot) is not None
    word = _WORD_BEFORE_PERIOD.search(text, max(0, dot - 8), dot)
    if word is None or _continues_word(text, word.start()):
        return False
    token = word.group()
    if token == "No":
        return text[next_start].isdigit()
    return token.lower() in ABBREVIATIONS or _INITIALS.fullmatch(token) is not None


def _continues_word(text: str, start: int) -> bool:
    """True when ``text[start]`` is not the start of an ASCII word."""
    previous = text[start - 1] if start else " "
    return previous == "." or (previous.isascii() and previous.isalnum())
