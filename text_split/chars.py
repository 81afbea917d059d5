"""Character classes shared by the token scanner and the boundary finder.

A *content* character is one a listener hears as (part of) a word: a letter, a
digit or a CJK character. Everything else is punctuation or whitespace, which
never makes a segment of its own: it is attached to a neighbouring word.
"""

from __future__ import annotations

import re

# \w plus combining diacritics, which belong to the letter before them.
CONTENT_CLASS = r"\w\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
# Han, kana, hangul, bopomofo, radicals: scripts written without spaces between
# words, so a cut between two of these characters is acceptable.
CJK_CLASS = (
    "\u1100-\u11ff\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u3190-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0003134f"
)

CONTENT_CHAR = re.compile(f"[{CONTENT_CLASS}]")
CJK_CHAR = re.compile(f"[{CJK_CLASS}]")

# Marks that end a sentence wherever they appear (the Latin period is special-cased).
SENTENCE_MARKS = "!?。！？；｡…‼⁇⁈⁉"
CLAUSE_MARKS = ",;:，、：﹐﹑､"
DASHES = "—–―"
CLOSERS = ")]}）」』”’〕】》〉〗｝｠»›"
# Opening brackets and quotes, and currency signs, belong to the word after them.
OPENERS = "([{（「『“‘〔【《〈〖｛｟«‹$¥€£₹￥＄"
# Punctuation that belongs to the word before it, even across whitespace.
TRAILING = "." + SENTENCE_MARKS + CLAUSE_MARKS + DASHES + CLOSERS + "-%‰°~～"
