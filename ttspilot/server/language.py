"""Whether text holds anything to speak, and whether a voice's language covers its letters.

A voice reads letters of its own scripts; anything else comes out as noise or spelled-out
character names. Checking the script of each letter (`unicodedata.name` starts with it) is
cheap and tells the client why the audio sounds wrong, without refusing the request.
"""

from __future__ import annotations

import unicodedata

# Scripts each language is written in, by the language part of a voice's language ("en-us" -> "en").
# Languages not listed here are written in Latin letters.
_SCRIPTS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("zh", "cmn", "yue"), ("CJK",)),
    "ja": ("CJK", "HIRAGANA", "KATAKANA"),
    "ko": ("HANGUL", "CJK"),
    **dict.fromkeys(("ru", "uk", "bg", "be", "mk", "kk", "ky", "mn", "tg"), ("CYRILLIC",)),
    "sr": ("CYRILLIC", "LATIN"),
    "el": ("GREEK",),
    **dict.fromkeys(("ar", "fa", "ur", "ps"), ("ARABIC",)),
    "he": ("HEBREW",),
    **dict.fromkeys(("hi", "mr", "ne", "sa"), ("DEVANAGARI",)),
    "bn": ("BENGALI",),
    "ta": ("TAMIL",),
    "te": ("TELUGU",),
    "kn": ("KANNADA",),
    "ml": ("MALAYALAM",),
    "gu": ("GUJARATI",),
    "pa": ("GURMUKHI",),
    "th": ("THAI",),
    "ka": ("GEORGIAN",),
    "hy": ("ARMENIAN",),
    "am": ("ETHIOPIC",),
}
_LATIN = ("LATIN",)


def has_speakable(text: str) -> bool:
    """Letters, digits or symbols (emoji, currency) in any script; punctuation and spaces alone say nothing."""
    return any(ch.isalnum() or unicodedata.category(ch).startswith("S") for ch in text)


def scripts_of(language: str) -> tuple[str, ...]:
    """The scripts a voice of `language` ("en-us", "cmn", "ru") reads."""
    return _SCRIPTS.get(language.lower().replace("_", "-").split("-")[0], _LATIN)


def coverage_warning(text: str, language: str) -> str | None:
    """Why the voice will not read `text` well, or None: most letters outside its scripts, or no letters at all."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        if any(ch.isdigit() for ch in text):
            return None
        return f"text has no letters, only symbols such as emoji; the voice ({language}) reads them as it can"
    scripts = scripts_of(language)
    covered = sum(unicodedata.name(ch, "").startswith(scripts) for ch in letters)
    if covered * 2 >= len(letters):
        return None
    return (
        f"{len(letters) - covered} of {len(letters)} letters are outside the scripts of the voice's language "
        f"{language} ({', '.join(s.title() for s in scripts)}); they will not sound right"
    )
