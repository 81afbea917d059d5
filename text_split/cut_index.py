"""Finding the best cut in a window of text, fast.

Punctuation cuts are found once and kept sorted per level, so a window is
answered with a binary search. Cuts between adjacent words are searched for in
the window itself, and only when no punctuation cut of their level or above
is there: text without punctuation costs only the windows actually looked at.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

from text_split.boundaries import ADJACENT_CUTS, AdjacentCut, Cut, Level, punctuation_cuts
from text_split.tokens import ProtectedSpans


class CutIndex:
    """All cuts of one text, queryable by level and position."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._spans = ProtectedSpans(text)
        self._cuts = punctuation_cuts(text, self._spans)
        self._reversed: str | None = None

    def paragraph_breaks(self) -> list[Cut]:
        """The paragraph breaks, in text order."""
        breaks = self._cuts[Level.PARAGRAPH]
        return [Cut(*pair) for pair in zip(breaks.lefts, breaks.rights)]

    def last_cut(self, level: Level, start: int, end: int) -> Cut | None:
        """The last cut of exactly ``level`` with ``start < left <= end``."""
        lefts, rights = self._cuts[level]
        index = bisect_right(lefts, end) - 1
        best = Cut(lefts[index], rights[index]) if index >= 0 and lefts[index] > start else None
        if level in ADJACENT_CUTS:
            best = self._last_adjacent(ADJACENT_CUTS[level], best.left if best else start, end) or best
        return best

    def first_cut(self, levels: Iterable[Level], start: int, end: int) -> Cut | None:
        """The first cut of any of ``levels`` with ``start < left <= end``."""
        best = None
        for level in levels:
            lefts, rights = self._cuts[level]
            index = bisect_right(lefts, start)
            if index < len(lefts) and lefts[index] <= end and (best is None or lefts[index] < best.left):
                best = Cut(lefts[index], rights[index])
        for level in levels:
            if level in ADJACENT_CUTS:
                best = self._first_adjacent(ADJACENT_CUTS[level], start, best.left - 1 if best else end) or best
        return best

    def _first_adjacent(self, kind: AdjacentCut, low: int, high: int) -> Cut | None:
        """The first unprotected cut of ``kind`` with ``low < left <= high``."""
        pos = low + 1
        while pos <= high:
            match = kind.pattern.search(self._text, pos, high + 1 + kind.width)
            if match is None:
                return None
            span = self._spans.around(match.start())
            if span is None:
                return Cut(match.start(), match.end())
            pos = span[1]
        return None

    def _last_adjacent(self, kind: AdjacentCut, low: int, high: int) -> Cut | None:
        """The last unprotected cut of ``kind`` with ``low < left <= high``.

        Searches the reversed text forwards, so the cost is the distance from
        ``high`` back to the cut, not the size of the window.
        """
        if self._reversed is None:
            self._reversed = self._text[::-1]
        size = len(self._text)
        pos = size - high - kind.width
        while pos < size - low:
            match = kind.pattern.search(self._reversed, pos, size - low)
            if match is None:
                return None
            span = self._spans.around(size - match.end())
            if span is None:
                return Cut(size - match.end(), size - match.start())
            pos = size - span[0] - kind.width
        return None
