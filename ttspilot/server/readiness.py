"""Waiting for a server to say it is ready: one loop for the launcher, the benchmarks and the tests.

/health answers 503 with a `reason` until the canary passed; a canary failure is final, so
the wait stops there instead of running out its timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import httpx

POLL_INTERVAL_S = 0.25


def wait_until_ready(
    url: str,
    timeout: float,
    exited: Callable[[], str | None] = lambda: None,
    headers: Mapping[str, str] | None = None,
    answered: Callable[[httpx.Response], None] = lambda _: None,
    path: str = "/health",
) -> str | None:
    """None once `url` + `path` (ours: /health) answers 200 within `timeout` seconds; otherwise why not.

    `exited` returns why the server process is gone (or None while it runs), so a crashed
    server is reported at once rather than after the timeout. `answered` sees every answer
    first and may raise (the launcher checks that the answer comes from its own child).
    """
    deadline = time.monotonic() + timeout
    last = f"no answer from {path}"
    while time.monotonic() < deadline:
        if (reason := exited()) is not None:
            return reason
        try:
            response = httpx.get(url + path, headers=headers, timeout=2)
            answered(response)
            if response.status_code == 200:
                return None
            last = response.json().get("reason", last)
            if last.startswith("canary"):
                return last
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(POLL_INTERVAL_S)
    return f"not ready after {timeout:g} s ({last})"
