"""Speakable text and script coverage: pure decisions, no server."""

from __future__ import annotations

import pytest

from ttspilot.server.language import coverage_warning, has_speakable, scripts_of


@pytest.mark.parametrize("text", ["...", "?!", " - ", "«»", "…"])
def test_punctuation_alone_is_not_speakable(text):
    assert not has_speakable(text)


@pytest.mark.parametrize("text", ["a", "3", "你好", "Привет", "😀", "$"])
def test_letters_digits_and_symbols_are_speakable(text):
    assert has_speakable(text)


@pytest.mark.parametrize(
    ("language", "scripts"),
    [("en-us", ("LATIN",)), ("cmn", ("CJK",)), ("ru", ("CYRILLIC",)), ("ja", ("CJK", "HIRAGANA", "KATAKANA"))],
)
def test_scripts_of_language(language, scripts):
    assert scripts_of(language) == scripts


@pytest.mark.parametrize(
    ("text", "language", "warns"),
    [
        ("Hello there.", "en-us", False),
        ("Hello 你好 there.", "en-us", False),  # most letters are Latin
        ("你好，世界。", "en-us", True),
        ("Привет мир", "en-us", True),
        ("Привет мир", "ru", False),
        ("你好，世界。", "cmn", False),
        ("😀 🎉", "en-us", True),
        ("42", "en-us", False),
    ],
)
def test_coverage_warning(text, language, warns):
    assert (coverage_warning(text, language) is not None) is warns
