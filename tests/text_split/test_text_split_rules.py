"""Table-driven tests: one row per rule, in English, Chinese and mixed text."""

from __future__ import annotations

import pytest

from text_split import split_text
from text_split.tokens import protected_spans

PARAGRAPHS = [
    ("First paragraph.\n\nSecond paragraph.", 100, ["First paragraph.", "Second paragraph."]),
    ("Hi.\r\n\r\nBye.", 100, ["Hi.", "Bye."]),
    ("第一段。\n\n第二段。", 100, ["第一段。", "第二段。"]),
    ("第1章 开始\n\n第2章 结束", 100, ["第1章 开始", "第2章 结束"]),
    ("Line one.\nLine two.", 100, ["Line one.", "Line two."]),
    ("This sentence is\nwrapped over two lines.", 100, ["This sentence is\nwrapped over two lines."]),
    ("中文换行\n继续句子。", 100, ["中文换行\n继续句子。"]),
    ("Dear John,\nthanks for the note", 100, ["Dear John,\nthanks for the note"]),
    ("Shopping list\n- apples\n- pears", 100, ["Shopping list", "- apples", "- pears"]),
    ("Items:\n* one\n* two", 100, ["Items:", "* one", "* two"]),
    ("Steps\n1. Boil water\n2. Add tea", 100, ["Steps", "1. Boil water", "2. Add tea"]),
    ("（一）总则\n（二）细则", 100, ["（一）总则", "（二）细则"]),
    ("一、总则\n二、细则", 100, ["一、总则", "二、细则"]),
    ("# Title\nBody text here", 100, ["# Title", "Body text here"]),
    ("Hello.\n\n...\n\nWorld.", 100, ["Hello.\n\n...", "World."]),
]

SENTENCES = [
    ("Hello world. How are you? I am fine!", 20, ["Hello world.", "How are you?", "I am fine!"]),
    ("Hi. Yes. OK.", 100, ["Hi. Yes. OK."]),
    ("One two. Three four. Five six.", 20, ["One two. Three four.", "Five six."]),
    ("你好。今天天气很好！我们去公园吧？", 8, ["你好。", "今天天气很好！", "我们去公园吧？"]),
    ("Wow！Great？Yes", 6, ["Wow！", "Great？", "Yes"]),
    ("前半句；后半句", 4, ["前半句；", "后半句"]),
    ("他犹豫了……然后走了。", 6, ["他犹豫了……", "然后走了。"]),
    ("Wait... What happened?", 15, ["Wait...", "What happened?"]),
    ("Hello ... world", 10, ["Hello ...", "world"]),
    ('He said "Stop." Then he left.', 16, ['He said "Stop."', "Then he left."]),
    ("I said “yes.” She said “no.”", 14, ["I said “yes.”", "She said “no.”"]),
    ("他说：“走吧。”然后离开了。", 8, ["他说：“走吧。”", "然后离开了。"]),
    ("（这是括号。）下一句。", 7, ["（这是括号。）", "下一句。"]),
    ("(It works.) Next one.", 12, ["(It works.)", "Next one."]),
    ("「你好。」『再见。』", 5, ["「你好。」", "『再见。』"]),
    ("'Fine.' Done.", 8, ["'Fine.'", "Done."]),
    ("Hello!!! ??? World", 12, ["Hello!!! ???", "World"]),
]

LONG_SENTENCES = [
    ("我们今天去了公园，看到了很多花，还吃了冰淇淋。", 10, ["我们今天去了公园，", "看到了很多花，", "还吃了冰淇淋。"]),
    ("apples, pears, plums, and figs", 15, ["apples, pears,", "plums, and figs"]),
    ("First part; second part: third part", 12, ["First part;", "second part:", "third part"]),
    ("It was late—very late—so we left", 15, ["It was late—", "very late—", "so we left"]),
    ("It was late - very late", 14, ["It was late -", "very late"]),
    ("苹果、香蕉、橙子、葡萄", 6, ["苹果、香蕉、", "橙子、葡萄"]),
    ("one two three, four five six", 20, ["one two three,", "four five six"]),
    ("the quick brown fox jumps over the lazy dog", 15, ["the quick brown", "fox jumps over", "the lazy dog"]),
    ("lorem ipsum dolor sit amet consectetur", 12, ["lorem ipsum", "dolor sit", "amet", "consectetur"]),
    ("internationalization is hard", 22, ["internationalization", "is hard"]),
    ("abcdefghijklmnopqrstuvwxyz", 10, ["abcdefghij", "klmnopqrst", "uvwxyz"]),
    ("supercalifragilistic", 5, ["super", "calif", "ragil", "istic"]),
    ("一二三四五六七八九十", 4, ["一二三四", "五六七八", "九十"]),
    (
        "这是一个没有标点符号的很长的中文句子我们需要把它切开",
        10,
        ["这是一个没有标点符号", "的很长的中文句子我们", "需要把它切开"],
    ),
    ("abc中defgh", 6, ["abc中", "defgh"]),
    ("我喜欢Python编程", 6, ["我喜欢", "Python", "编程"]),
    ("Python很好用", 7, ["Python很", "好用"]),
    ("Note (see below) here", 6, ["Note", "(see", "below)", "here"]),
    ("don't stop", 6, ["don't", "stop"]),
]

NUMBERS = [
    ("Pi is 3.14. Next.", 12, ["Pi is 3.14.", "Next."]),
    ("The value is 3.14159265 exactly", 10, ["The value", "is", "3.14159265", "exactly"]),
    ("Population: 1,000,000 people", 12, ["Population:", "1,000,000", "people"]),
    ("Install v1.2.3 now", 8, ["Install", "v1.2.3", "now"]),
    ("Meet at 12:30, please", 14, ["Meet at 12:30,", "please"]),
    ("Released 2024.05.01. Enjoy", 20, ["Released 2024.05.01.", "Enjoy"]),
    ("Growth was 50%. Good.", 15, ["Growth was 50%.", "Good."]),
    ("It costs $1,234.56 today", 9, ["It costs", "$1,234.56", "today"]),
    ("价格是¥3.5元。", 5, ["价格是", "¥3.5", "元。"]),
    ("共有1,000,000人", 4, ["共有", "1,000,000", "人"]),
    ("12345678901234567890", 5, ["12345678901234567890"]),
    ("It is -5 degrees", 7, ["It is", "-5", "degrees"]),
    ("Call me at 555-1234.", 100, ["Call me at 555-1234."]),
]

ABBREVIATIONS = [
    ("Mr. Smith met Dr. Jones. They talked.", 30, ["Mr. Smith met Dr. Jones.", "They talked."]),
    ("Mr. and Mrs. Smith arrived. Prof. Lee left.", 28, ["Mr. and Mrs. Smith arrived.", "Prof. Lee left."]),
    ("Bring pens, paper, etc. Then sit down.", 25, ["Bring pens, paper,", "etc. Then sit down."]),
    ("Use tools, e.g. hammers. Done.", 24, ["Use tools, e.g. hammers.", "Done."]),
    ("J. R. R. Tolkien wrote it. Yes.", 27, ["J. R. R. Tolkien wrote it.", "Yes."]),
    ("I moved to the U.S.A. in 2020. It was fun.", 30, ["I moved to the U.S.A. in 2020.", "It was fun."]),
    ("See Fig. 3 for details.", 10, ["See Fig. 3", "for", "details."]),
    ("Ask for No. 5 first.", 8, ["Ask for", "No. 5", "first."]),
    ("The answer is No. Then we left.", 20, ["The answer is No.", "Then we left."]),
    ("St. Louis vs. Chicago", 12, ["St. Louis", "vs. Chicago"]),
    ("Dr. Who", 4, ["Dr.", "Who"]),  # last resort: still better than inside a word
]

TOKENS = [
    ("Visit https://example.com/path?a=1&b=2. Thanks!", 20, ["Visit", "https://example.com/path?a=1&b=2.", "Thanks!"]),
    (
        "Version 2.0 is out. Download it from https://example.com/download now!",
        30,
        ["Version 2.0 is out.", "Download it from", "https://example.com/download", "now!"],
    ),
    ("Write to john.doe@example.com today.", 12, ["Write to", "john.doe@example.com", "today."]),
    ("Email: a.b@c.com, phone: 12:30.", 12, ["Email:", "a.b@c.com,", "phone:", "12:30."]),
    ("Go to example.com. It is free.", 18, ["Go to example.com.", "It is free."]),
    ("Open report.pdf now", 10, ["Open", "report.pdf", "now"]),
    ("访问www.example.com获取信息", 8, ["访问", "www.example.com", "获取信息"]),
]

MIXED = [
    ("今天我们学习Python。It is fun!明天继续。", 14, ["今天我们学习Python。", "It is fun!", "明天继续。"]),
    ("I use Linux.我也用Mac。", 12, ["I use Linux.", "我也用Mac。"]),
    ("Hello，世界。Good morning, 朋友们！", 10, ["Hello，世界。", "Good", "morning,", "朋友们！"]),
    ("他说：“今天是2024年5月1日，气温25.5度。”", 14, ["他说：", "“今天是2024年5月1日，", "气温25.5度。”"]),
]

EDGES = [
    ("", 10, []),
    ("   \n\n  \t", 10, []),
    ("...", 10, ["..."]),
    ("!?。", 1, ["!?。"]),
    ("  Hello  ", 10, ["Hello"]),
    ("...and then", 100, ["...and then"]),
    ("x", 1, ["x"]),
    ("0\U0002ebe1", 1, ["0\U0002ebe1"]),  # an unassigned code point is not a word
]

RULES = {
    "paragraph": PARAGRAPHS,
    "sentence": SENTENCES,
    "long-sentence": LONG_SENTENCES,
    "number": NUMBERS,
    "abbreviation": ABBREVIATIONS,
    "token": TOKENS,
    "mixed": MIXED,
    "edge": EDGES,
}
CASES = [
    pytest.param(text, max_length, expected, id=f"{rule}-{index}")
    for rule, rows in RULES.items()
    for index, (text, max_length, expected) in enumerate(rows)
]


@pytest.mark.parametrize(("text", "max_length", "expected"), CASES)
def test_split(text: str, max_length: int, expected: list[str]) -> None:
    assert split_text(text, max_length) == expected


FAST_START = [
    ("Hello there, how are you doing today? Fine.", 20, ["Hello there,", "how are you doing today? Fine."]),
    ("你好，我是语音助手。今天有什么可以帮你？", 10, ["你好，", "我是语音助手。今天有什么可以帮你？"]),
    ("Hi! This is a longer sentence, with a clause.", 30, ["Hi!", "This is a longer sentence, with a clause."]),
    ("A, b. C, d.", 5, ["A,", "b. C, d."]),
    # No clause within reach: packed like any segment, within the shorter limit.
    ("one two three four five six seven. eight", 10, ["one two", "three four five six seven. eight"]),
    ("Hello world", 50, ["Hello world"]),
    ("Title\n\nBody, with a clause.", 20, ["Title", "Body, with a clause."]),
]


@pytest.mark.parametrize(("text", "first_segment_max", "expected"), FAST_START)
def test_first_segment_max(text: str, first_segment_max: int, expected: list[str]) -> None:
    assert split_text(text, 100, first_segment_max) == expected


def test_first_segment_max_above_max_length_is_capped() -> None:
    assert split_text("aaaa bbbb cccc", max_length=9, first_segment_max=50) == ["aaaa bbbb", "cccc"]


PROTECTED = [
    ("Pi is 3.14, e is 2.718.", ["3.14", "2.718"]),
    ("1,000,000 and 12:30 and 2024.05.01 and 2024-05-01", ["1,000,000", "12:30", "2024.05.01", "2024-05-01"]),
    ("Use v1.2.3 or Python3.11", ["v1.2.3", "3.11"]),
    ("Pay $1,234.56 or ¥3.5 or 50%", ["1,234.56", "3.5", "50"]),
    ("See https://example.com/a?b=1.", ["https://example.com/a?b=1"]),
    ("(https://en.wikipedia.org/wiki/Foo_(bar))", ["https://en.wikipedia.org/wiki/Foo_(bar"]),
    ("Mail john.doe@example.com.", ["john.doe@example.com"]),
    ("Open report.pdf at example.com/docs.", ["report.pdf", "example.com/docs"]),
    ("访问www.example.com获取", ["www.example.com"]),
    ("e.g. U.S.A. i.e. Mr. Smith 5 x", []),
]


@pytest.mark.parametrize(("text", "expected"), PROTECTED)
def test_protected_spans(text: str, expected: list[str]) -> None:
    assert [text[start:end] for start, end in protected_spans(text)] == expected


@pytest.mark.parametrize("name", ["max_length", "first_segment_max"])
@pytest.mark.parametrize("value", [0, -1])
def test_limits_below_one_are_rejected(name: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"{name} must be at least 1"):
        split_text("Hello.", **{name: value})


@pytest.mark.parametrize("arguments", [("Hello.", 1.5), ("Hello.", True), ("Hello.", 10, "5"), (b"Hello.", 10)])
def test_wrong_types_are_rejected(arguments: tuple[object, ...]) -> None:
    with pytest.raises(TypeError):
        split_text(*arguments)  # type: ignore[arg-type]
