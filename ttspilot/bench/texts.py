"""Fixed benchmark texts, so figures from different runs and machines compare.

English and Chinese sets of a short, a medium and a long text; `--quick` runs use the
short and medium ones. An operator's own texts come from a file, one text per line.
"""

from __future__ import annotations

from pathlib import Path

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
_STORY_ZH = (
    "每天傍晚，守塔人都会沿着狭窄的楼梯爬上灯塔。"
    "他检查灯具，擦去玻璃上的盐霜，然后在日志里写下一行简短的记录。"
    "大多数夜晚都很平静，但到了冬天，风暴会突然从北方袭来，海浪重重地拍打礁石，整座塔仿佛都在嗡嗡作响。"
    "远处的海面上有船只驶过，灯光微弱而稳定，他一直望着，直到它们消失不见。"
    "早上，他走到村子里买面包、打听消息，孩子们总是问他有没有见过鲸鱼。"
    "他每次都说见过，因为很多年前，他真的见过一次。"
)
QUICK_NAMES: tuple[str, ...] = ("short", "medium")


def _passage(story: str, characters: int, sentence_end: str) -> str:
    """`story`, repeated as needed, cut at the sentence end nearest to `characters`."""
    text = story * (characters // len(story) + 2)
    ends = [i + len(sentence_end) for i in range(len(text)) if text.startswith(sentence_end, i)]
    return text[: min(ends, key=lambda end: abs(end - characters))].strip()


def english_text(characters: int) -> str:
    """A natural English passage cut at the sentence end nearest to `characters`."""
    return _passage(_STORY, characters, ". ")


def chinese_text(characters: int) -> str:
    """A natural Chinese passage cut at the sentence end (。) nearest to `characters`."""
    return _passage(_STORY_ZH, characters, "。")


ENGLISH = {"short": "The lighthouse keeper climbed the stairs.", "medium": english_text(200), "long": english_text(1200)}
CHINESE = {"short": "守塔人每天傍晚都会爬上灯塔。", "medium": chinese_text(80), "long": chinese_text(500)}
TEXT_SETS: dict[str, dict[str, str]] = {"en": ENGLISH, "zh": CHINESE}


def language_of(voice_language: str) -> str:
    """The built-in set for a voice's language tag (espeak "en-us", "cmn", "zh"...); English otherwise."""
    return "zh" if voice_language.lower().startswith(("zh", "cmn", "yue")) else "en"


def builtin_texts(language: str, quick: bool) -> dict[str, str]:
    texts = TEXT_SETS[language]
    return {name: texts[name] for name in QUICK_NAMES} if quick else dict(texts)


def read_texts(path: Path) -> dict[str, str]:
    """An operator's texts: one per non-empty line, named line1, line2, ... in file order."""
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    texts = {f"line{number}": line for number, line in enumerate(lines, 1) if line}
    if not texts:
        raise ValueError(f"{path}: no text in it (one text per line)")
    return texts
