"""The operator command: python -m text_split, run as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _run(stdin: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "text_split", *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )


def test_prints_one_segment_per_line() -> None:
    text = "Hello world. How are you? I am fine!\n\n你好。今天天气很好！"
    result = _run(text, "--max-length", "20")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Hello world.",
        "How are you?",
        "I am fine!",
        "你好。今天天气很好！",
    ]


def test_line_breaks_inside_a_segment_print_as_spaces() -> None:
    result = _run("This sentence is\nwrapped over\r\ntwo lines.", "--max-length", "80")
    assert result.stdout == "This sentence is wrapped over two lines.\n"


def test_first_segment_max() -> None:
    result = _run("Hello there, how are you doing today?", "--max-length", "80", "--first-segment-max", "20")
    assert result.stdout.splitlines() == ["Hello there,", "how are you doing today?"]


def test_default_max_length_and_empty_input() -> None:
    assert _run("Hi. Yes. OK.").stdout == "Hi. Yes. OK.\n"
    assert _run("  \n").stdout == ""


def test_invalid_limit_is_a_usage_error() -> None:
    result = _run("Hello.", "--max-length", "0")
    assert result.returncode == 2
    assert "max_length must be at least 1" in result.stderr
    result = _run("Hello.", "--first-segment-max", "-3")
    assert result.returncode == 2
    assert "first_segment_max must be at least 1" in result.stderr
