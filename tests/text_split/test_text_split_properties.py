"""Property-based tests: invariants that must hold for any text and limits."""

from __future__ import annotations

import itertools
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from text_split import split_spans, split_text
from text_split.chars import CONTENT_CHAR, OPENERS, TRAILING
from text_split.tokens import protected_spans

LETTERS = "abcxyzABCJ"
DIGITS = "0123456789"
CJK = "中文字你好カ한"
WHITESPACE = " \u3000\n\r\t"
PUNCTUATION = "。！？！？；…….,!?”」』）)]'\"“「『（(，、；：,;:—–-/@%$¥#*&~"
ALPHABET = LETTERS + DIGITS + CJK + WHITESPACE + PUNCTUATION
FRAGMENTS = [
    "3.14",
    "1,000,000",
    "12:30",
    "v1.2.3",
    "2024.05.01",
    "$1,234.56",
    "¥3.5",
    "50%",
    "https://example.com/a?b=1",
    "www.example.org",
    "john.doe@example.com",
    "report.pdf",
    "example.com",
    "Mr.",
    "Dr.",
    "No.",
    "etc.",
    "e.g.",
    "i.e.",
    "U.S.A.",
    "J.",
    "Hello",
    "world",
    "internationalization",
    "你好",
    "中文句子",
    "...",
    "……",
    "\n\n",
    "\n- ",
    "\n1. ",
    "\n# ",
    "——",
    "“",
    "”",
    "「",
    "」",
    " - ",
    "don't",
]
texts = st.one_of(
    st.text(alphabet=ALPHABET, max_size=300),
    st.text(max_size=100),  # any Unicode at all
    st.lists(
        st.one_of(st.sampled_from(FRAGMENTS), st.text(alphabet=ALPHABET, max_size=6)),
        max_size=60,
    ).map("".join),
)
limits = st.integers(min_value=1, max_value=60)
fast_starts = st.one_of(st.none(), st.integers(min_value=1, max_value=60))
WHITESPACE_RUN = re.compile(r"\s+")
STAYS_BEHIND = TRAILING.replace("-", "")


def _content_positions(text: str, start: int, end: int) -> list[int]:
    return [i for i in range(start, end) if CONTENT_CHAR.match(text, i)]


@settings(max_examples=250, deadline=None)
@given(texts, limits, fast_starts)
def test_spans_cover_the_text_in_order(text: str, max_length: int, first_segment_max: int | None) -> None:
    spans = split_spans(text, max_length, first_segment_max)
    segments = split_text(text, max_length, first_segment_max)
    assert segments == [text[a:b] for a, b in spans]
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end
        assert text[previous_end:start].strip() == ""  # only whitespace is left out
        previous_end = end
    assert text[previous_end:].strip() == ""


@settings(max_examples=250, deadline=None)
@given(texts, limits, fast_starts)
def test_lossless(text: str, max_length: int, first_segment_max: int | None) -> None:
    segments = split_text(text, max_length, first_segment_max)
    assert WHITESPACE_RUN.sub("", "".join(segments)) == WHITESPACE_RUN.sub("", text)


@settings(max_examples=250, deadline=None)
@given(texts, limits, fast_starts)
def test_no_empty_or_punctuation_only_segment(text: str, max_length: int, first_segment_max: int | None) -> None:
    segments = split_text(text, max_length, first_segment_max)
    has_content = CONTENT_CHAR.search(text) is not None
    for segment in segments:
        assert segment and segment == segment.strip()
        if has_content:
            assert CONTENT_CHAR.search(segment), segment
    if not has_content:
        assert segments == ([text.strip()] if text.strip() else [])


@settings(max_examples=250, deadline=None)
@given(texts, limits, fast_starts)
def test_length_bound_or_unbreakable(text: str, max_length: int, first_segment_max: int | None) -> None:
    """A segment over the limit has no cut point: all its letters, digits and CJK
    characters lie inside one protected token, or it has only one of them."""
    spans = split_spans(text, max_length, first_segment_max)
    protected = protected_spans(text)
    for index, (start, end) in enumerate(spans):
        limit = max_length
        if index == 0 and first_segment_max is not None:
            limit = min(max_length, first_segment_max)
        if end - start <= limit:
            continue
        content = _content_positions(text, start, end)
        if len(content) <= 1:
            continue
        assert any(s <= content[0] and content[-1] < e for s, e in protected), text[start:end]


@settings(max_examples=250, deadline=None)
@given(texts, limits, fast_starts)
def test_cuts_respect_tokens_and_attached_punctuation(
    text: str, max_length: int, first_segment_max: int | None
) -> None:
    spans = split_spans(text, max_length, first_segment_max)
    protected = protected_spans(text)
    for (_, end), (start, _) in itertools.pairwise(spans):
        if end == start:  # no whitespace: the cut must not fall inside a token
            assert not any(s < end < e for s, e in protected), (text, end)
        # Closers and marks stay with the word before; "-" may start a bullet or "-5".
        assert text[start] not in STAYS_BEHIND, text[start:]
        assert text[end - 1] not in OPENERS, text[:end]  # openers go with the next word


@settings(max_examples=100, deadline=None)
@given(texts, limits, fast_starts)
def test_deterministic(text: str, max_length: int, first_segment_max: int | None) -> None:
    assert split_text(text, max_length, first_segment_max) == split_text(text, max_length, first_segment_max)


@settings(max_examples=100, deadline=None)
@given(texts, limits, st.integers(min_value=1, max_value=60))
def test_fast_start_only_shortens_the_first_segment(text: str, max_length: int, first_segment_max: int) -> None:
    fast = split_spans(text, max_length, first_segment_max)
    normal = split_spans(text, max_length)
    assert bool(fast) == bool(normal)
    if fast:
        assert fast[0][0] == normal[0][0]
        assert fast[0][1] <= normal[0][1]
