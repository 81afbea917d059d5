"""Show how a text will be spoken: one segment per line.

    python -m text_split --max-length 80 [--first-segment-max 30] < file.txt

Line breaks inside a segment are shown as spaces so that each output line is
exactly one model call.
"""

from __future__ import annotations

import argparse
import re
import sys

from text_split import split_text

_LINE_BREAK = re.compile(r"[^\S\r\n]*[\r\n]+\s*")


def main(argv: list[str] | None = None) -> int:
    """Read UTF-8 text from stdin and print its segments, one per line."""
    parser = argparse.ArgumentParser(
        prog="python -m text_split",
        description="Split the text on stdin into speech segments, one per line.",
    )
    parser.add_argument("--max-length", type=int, default=100, help="longest segment, in characters (default 100)")
    parser.add_argument(
        "--first-segment-max",
        type=int,
        default=None,
        help="end the first segment at the first clause or sentence within this many characters",
    )
    args = parser.parse_args(argv)
    try:
        text = sys.stdin.buffer.read().decode("utf-8")
        segments = split_text(text, args.max_length, args.first_segment_max)
    except (UnicodeDecodeError, ValueError) as error:
        parser.error(str(error))
    output = "".join(_LINE_BREAK.sub(" ", segment) + "\n" for segment in segments)
    sys.stdout.buffer.write(output.encode("utf-8"))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
