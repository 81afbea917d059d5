"""A server a launcher started ends with its launcher, even one killed with SIGKILL, so none is left orphaned."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys

log = logging.getLogger("ttspilot.server")

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def end_with_launcher(launcher_pid: int) -> bool:
    """Ask Linux for SIGTERM (uvicorn's graceful path) when the launcher dies; elsewhere only the check below runs.

    Linux sends it when the thread that started this process ends; launchers start servers from
    their main thread. False when the launcher is already gone: it died before the request took effect.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
            log.warning("cannot ask to end with the launcher: %s", os.strerror(ctypes.get_errno()))
    return os.getppid() == launcher_pid
