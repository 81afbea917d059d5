"""Linear time: large and pathological inputs split well within a second.

Times are CPU time of this process, so that other work on a busy machine does
not make the tests flaky.
"""

from __future__ import annotations

import time

import pytest

from text_split import split_text

MEGABYTE = 1_000_000
ENGLISH = (
    "Mr. Smith paid $1,234.56 on 2024.05.01 at 12:30, see https://example.com/a?b=1 "
    "or write to john@example.com. It was great! Was it? Yes... The quick brown fox "
    "jumps over the lazy dog; then, it rested.\n"
)
CHINESE = "今天我们学习了Python 3.11的新特性，包括更快的速度、更好的错误信息；老师说：“这很重要。”大家都很开心！\n\n"


def _timed_split(text: str, max_length: int = 100) -> tuple[list[str], float]:
    start = time.process_time()
    segments = split_text(text, max_length)
    return segments, time.process_time() - start


def _repeat_to(unit: str, size: int) -> str:
    return unit * (size // len(unit) + 1)


def test_one_megabyte_of_mixed_text_is_fast() -> None:
    """Linear: four times the text takes well under 8x the time (quadratic would be 16x); the absolute bound is loose
    because a shared machine's speed varies by 2-3x from day to day."""
    text = _repeat_to(ENGLISH + CHINESE, MEGABYTE)
    _, quarter_seconds = _timed_split(text[: MEGABYTE // 4])
    segments, seconds = _timed_split(text)
    assert seconds < 8 * quarter_seconds and seconds < 4.0
    assert "".join("".join(segments).split()) == "".join(text.split())
    assert max(map(len, segments)) <= 100


def test_hundred_thousand_dots_are_one_segment() -> None:
    segments, seconds = _timed_split("." * 100_000)
    assert segments == ["." * 100_000]
    assert seconds < 1.0


def test_dots_between_words_stay_attached() -> None:
    text = "Hello" + "." * 100_000 + " World"
    segments, seconds = _timed_split(text)
    assert seconds < 1.0
    assert segments[-1] == "World"
    assert "".join(segments[:-1]) == text[: -len(" World")]


@pytest.mark.parametrize(
    ("unit", "size"),
    [
        ("lorem ipsum dolor sit amet ", MEGABYTE),  # words, no punctuation
        ("中文字符没有标点", MEGABYTE),  # CJK, no spaces either
        ("a", MEGABYTE),  # one enormous word: hard cuts only
        ("中" + "a" * 199, MEGABYTE),  # a CJK cut at the start of every window
        ("a, " + "b" * 200 + " ", MEGABYTE),  # a clause cut early in every window
        # Punctuation between every two letters is the costliest text per
        # character (about 1 s per MB); a quadratic splitter would never finish.
        ("a.", MEGABYTE // 4),
    ],
)
def test_text_without_sentences_is_fast(unit: str, size: int) -> None:
    text = _repeat_to(unit, size)
    segments, seconds = _timed_split(text)
    assert seconds < 1.0
    assert max(map(len, segments)) <= 100


def test_one_megabyte_number_is_one_unbreakable_segment() -> None:
    text = "1" * MEGABYTE
    segments, seconds = _timed_split(text)
    assert segments == [text]
    assert seconds < 1.0
