"""Fixed benchmark texts, so figures from different runs and machines compare."""

from __future__ import annotations

_STORY = (
    "The lighthouse keeper climbed the narrow stairs every evening at dusk. "
    "He checked the lamp, wiped the salt from the glass, and wrote a short line in his log. "
    "Most nights were calm, but in winter the storms came quickly from the north, "
    "and the waves struck the rocks so hard that the whole tower seemed to hum. "
    "Ships passed far out at sea, their lights small and steady, and he watched them until they were gone. "
    "In the morning he walked down to the village for bread and news, "
    "and the children asked him whether he had seen any whales. "
    "He always said yes, because once, many years ago, he really had. "
)


def english_text(characters: int) -> str:
    """A natural English passage cut at the sentence end nearest to `characters`."""
    text = _STORY * (characters // len(_STORY) + 2)
    ends = [i + 1 for i in range(len(text) - 1) if text[i] == "." and text[i + 1] == " "]
    return text[: min(ends, key=lambda end: abs(end - characters))]


ENGLISH = {"short": "The lighthouse keeper climbed the stairs.", "medium": english_text(200), "long": english_text(1200)}
