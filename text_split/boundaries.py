"""Boundary detection: where a text may be cut, and how good each cut is.

A cut separates two words and never leaves punctuation on its own: a run of
punctuation and whitespace between two words yields exactly one cut, placed
after the marks that belong to the word before (terminators, clause marks,
closing quotes) and before those that belong to the word after (opening
brackets, currency signs). Two words with nothing between them (CJK
characters, letters of one word) can be cut between; those cuts are described
by patterns and searched for only when needed (see ``cut_index``).
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import NamedTuple

from text_split.chars import (
    CJK_CHAR,
    CJK_CLASS,
    CLAUSE_MARKS,
    CONTENT_CLASS,
    DASHES,
    OPENERS,
    SENTENCE_MARKS,
    TRAILING,
)
from text_split.tokens import ProtectedSpans, non_terminal_period


class Level(IntEnum):
    """How good a cut is: the packer prefers higher levels.

    WORD: between two letters of a Latin word, a hard cut.
    ABBREVIATION: after an abbreviation, an initial or a list number, or at a
    period inside a word (a.m, U.S.A).
    CHARACTER: between CJK characters, or at punctuation with no space.
    SPACE: whitespace between words.
    CLAUSE: after ，、；：,;: or a dash.
    SENTENCE: after a sentence end and its closing quotes.
    PARAGRAPH: a blank line, or a line break that starts a new line.
    """

    WORD = -2
    ABBREVIATION = -1
    CHARACTER = 0
    SPACE = 1
    CLAUSE = 2
    SENTENCE = 3
    PARAGRAPH = 4


class Cut(NamedTuple):
    """A cut: the segment before it ends at ``left``, the next starts at ``right``."""

    left: int
    right: int


class LevelCuts(NamedTuple):
    """The cuts of one level, in text order, as two parallel lists."""

    lefts: list[int]
    rights: list[int]


class AdjacentCut(NamedTuple):
    """Cuts between two words with nothing but ``width`` characters between them."""

    pattern: re.Pattern[str]
    width: int


_C, _CJK = CONTENT_CLASS, CJK_CLASS
ADJACENT_CUTS = {
    Level.SPACE: AdjacentCut(re.compile(f"(?<=[{_C}]) (?=[{_C}])"), 1),
    Level.CHARACTER: AdjacentCut(re.compile(f"(?<=[{_C}])(?=[{_C}])(?:(?<=[{_CJK}])|(?=[{_CJK}]))"), 0),
    Level.WORD: AdjacentCut(re.compile(f"(?<=[{_C}])(?<![{_CJK}])(?=[{_C}])(?![{_CJK}])"), 0),
}
# Punctuation and whitespace runs, except a single space between two words:
# that is the commonest cut of all, left to ADJACENT_CUTS.
_RUN = re.compile(f"[^{_C}]{{2,}}|[^{_C} ]")
# Where a run stops belonging to the word before it: at an opener, at a symbol
# after whitespace ("# heading", '"quote', "* item"), at a sign ("-5") or at a
# hyphen that starts a line (a bullet).
_RIGHT_START = re.compile(
    f"[{re.escape(OPENERS)}]"
    f"|(?<=\\s)[^\\s{re.escape(TRAILING)}]"
    r"|(?<=\s)-(?=[0-9])"
    r"|\n[ \t]*(-)"
)
_MARK_LEVELS = {  # marks whose level does not depend on their context
    **dict.fromkeys(SENTENCE_MARKS, Level.SENTENCE),
    **dict.fromkeys(CLAUSE_MARKS + DASHES, Level.CLAUSE),
}
# Runs whose cut depends on the text around them: periods (abbreviations),
# line breaks (paragraphs), apostrophes and hyphens (signs, bullets).
_CONTEXTUAL = re.compile("[.\n'’-]")
_SENTENCE_MARK = re.compile(f"[{re.escape(SENTENCE_MARKS)}]")
_CLAUSE_MARK = re.compile(f"[{re.escape(CLAUSE_MARKS + DASHES)}]|--")
_APOSTROPHES = ("'", "’")
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")
_HEADING = re.compile(r"[ \t]*#{1,6}[ \t]")
_LINE_ITEM = re.compile(
    r"[-*+•·][ \t]|#{1,6}[ \t]"
    r"|[(（]?[0-9一二三四五六七八九十]{1,3}[.)）、](?![0-9])"
    r"|[A-Za-z][.)][ \t]"
)


def punctuation_cuts(text: str, spans: ProtectedSpans) -> dict[Level, LevelCuts]:
    """One cut for every punctuation or whitespace run between two words, by level."""
    cuts = {level: LevelCuts([], []) for level in Level}
    shapes: dict[str, tuple[int, int, Level]] = {}  # runs that read the same anywhere
    size = len(text)
    for match in _RUN.finditer(text):
        start, end = match.span()
        if start == 0 or end == size:
            continue  # leading or trailing punctuation belongs to its only neighbour
        run = match.group()
        shape = shapes.get(run)
        if shape is None:
            shape = _run_shape(text, run, start, end)
            if _CONTEXTUAL.search(run) is None:
                shapes[run] = shape
        left, right, level = start + shape[0], start + shape[1], shape[2]
        if left == right and spans.around(left) is not None:
            continue
        cuts[level].lefts.append(left)
        cuts[level].rights.append(right)
    return cuts


def _run_shape(text: str, run: str, start: int, end: int) -> tuple[int, int, Level]:
    """The cut in the run ``text[start:end]``: its left and right offsets in the run, and its level."""
    # One character past the run, for the look-ahead of "-5"; a match there is
    # the next word itself, the same as no match.
    right_start = _RIGHT_START.search(text, start, end + 1)
    right = end if right_start is None else right_start.start(right_start.lastindex or 0)
    kept = run[: right - start].rstrip()
    left = start + len(kept)
    level = _mark_level(text, kept.lstrip(), start, left < right, right)
    if "\n" in run and _starts_paragraph(text, run, left, right, level):
        level = Level.PARAGRAPH
    return left - start, right - start, level


def _starts_paragraph(text: str, run: str, left: int, right: int, level: Level) -> bool:
    """Whether the line break in ``run`` separates paragraphs, not wrapped lines."""
    if _BLANK_LINE.search(run):
        return True
    return "\n" in text[left:right] and (
        level >= Level.SENTENCE
        or _LINE_ITEM.match(text, right) is not None
        or _HEADING.match(text, text.rfind("\n", 0, left) + 1) is not None
    )


def _mark_level(text: str, marks: str, start: int, spaced: bool, right: int) -> Level:
    """The level given by the ``marks`` that stay with the word before the cut."""
    base = Level.SPACE if spaced else Level.CHARACTER
    if not marks:
        return base
    simple = _MARK_LEVELS.get(marks)
    if simple is not None:
        return simple
    if _SENTENCE_MARK.search(marks):
        return Level.SENTENCE
    period = _period_level(text, marks, start, spaced, right) if "." in marks else None
    if period is Level.SENTENCE:
        return period
    if _CLAUSE_MARK.search(marks) or (marks == "-" and spaced):
        return Level.CLAUSE
    if period is not None:
        return period
    if not spaced and marks in _APOSTROPHES and text[start - 1].isalpha() and text[right].isalpha():
        return Level.WORD  # don't, it’s
    return base


def _period_level(text: str, marks: str, start: int, spaced: bool, right: int) -> Level | None:
    """The level set by a Latin period or ellipsis in ``marks``, if it sets one.

    A period followed by neither whitespace nor CJK is inside a word ("a.m",
    "U.S.A" before its last period): cutting there is a last resort.
    """
    ends_sentence = spaced or CJK_CHAR.match(text, right) is not None
    if ".." in marks:
        return Level.SENTENCE if ends_sentence else Level.CLAUSE
    if text[start] != ".":
        return Level.SENTENCE if ends_sentence else None
    if not ends_sentence or non_terminal_period(text, start, right):
        return Level.ABBREVIATION
    return Level.SENTENCE
