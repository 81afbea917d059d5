"""Progress bars draw on a terminal only: a pipe or a log file gets no redraws."""

from __future__ import annotations

import io
import os

from ttspilot.progress import elapsed_bar, progress_bar


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_on_a_pipe_writes_nothing():
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as pipe, progress_bar(total=3, desc="work", file=pipe) as bar:
        bar.update(3)
    with os.fdopen(read_end) as reader:
        assert reader.read() == ""


def test_a_bar_on_a_terminal_draws():
    terminal = FakeTerminal()
    with progress_bar(total=3, desc="work", file=terminal) as bar:
        bar.update(3)
    assert "work" in terminal.getvalue() and "\r" in terminal.getvalue()


def test_elapsed_bar_is_silent_when_stderr_is_captured(capfd):
    with elapsed_bar("cpu: build"):
        pass
    assert capfd.readouterr().err == ""
