"""Try tiers in order; supervise the one that comes up; fall back when it keeps failing.

A candidate fails when its process exits, readiness times out, or the canary's audio is
NaN, infinite or silent. A healthy server is never killed for staying up; one that dies
after being ready is restarted on the same tier (bounded), then the next tier is tried.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from types import FrameType

from ttspilot.config import TIERS
from ttspilot.launcher.child import SERVER_SCRIPT, ServerChild

log = logging.getLogger("ttspilot.launcher")


@dataclass(frozen=True)
class LaunchOptions:
    host: str = "127.0.0.1"
    port: int = 9234
    server_args: tuple[str, ...] = ()  # passed through to every server child
    ready_timeout: float = 180.0
    canary: bool = True
    max_restarts: int = 3


def server_command(tier: str, options: LaunchOptions) -> list[str]:
    """The exact command that starts one tier; printed by --dry_run."""
    command = [sys.executable, str(SERVER_SCRIPT), *TIERS[tier].cli_args(), "--host", options.host]
    command += ["--port", str(options.port), *options.server_args]
    return command + ([] if options.canary else ["--no_canary"])


@dataclass
class Supervisor:
    """Owns the current child and forwards SIGINT/SIGTERM to it."""

    options: LaunchOptions
    stopping: bool = False
    child: ServerChild | None = None
    failures: list[str] = field(default_factory=list)

    def _forward(self, signum: int, _: FrameType | None) -> None:
        self.stopping = True
        log.info("received %s: stopping the server", signal.Signals(signum).name)
        if self.child is not None:
            self.child.signal(signal.SIGTERM)  # uvicorn's graceful path; SIGINT makes it re-raise KeyboardInterrupt

    def run(self, tiers: list[str]) -> int:
        """Serve on the first tier that works; return the exit code for the launcher."""
        previous = {sig: signal.signal(sig, self._forward) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for tier in tiers:
                code = self._serve_tier(tier)
                if code is not None:
                    return code
            log.error("no tier came up; failures: %s", " | ".join(self.failures) or "none tried")
            return 1
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _start(self, tier: str) -> str | None:
        """Start the tier and check it; None when it is live, else the failure reason."""
        url = f"http://{self.options.host}:{self.options.port}"
        self.child = ServerChild(server_command(tier, self.options), url)
        log.info("tier %s: starting %s", tier, " ".join(self.child.command[1:]))
        started = time.monotonic()
        self.child.start()
        reason = self.child.wait_ready(self.options.ready_timeout)
        if reason is None and self.options.canary and not self.stopping:
            reason = self.child.canary()
        if reason is not None:
            self.child.stop()
            return reason
        log.info("tier %s: ready in %.1f s, serving on %s (pid %d)", tier, time.monotonic() - started, url,
                 self.child.process.pid)
        return None

    def _serve_tier(self, tier: str) -> int | None:
        """Exit code when serving ended for good; None to move to the next tier."""
        restarts = 0
        while not self.stopping:
            reason = self._start(tier)
            if self.stopping:
                return 0 if reason is None else 130
            if reason is not None:
                self.failures.append(f"{tier}: {reason}")
                log.warning("tier %s failed: %s; trying the next tier", tier, reason)
                return None
            code = self.child.process.wait()
            self.child.stop()
            if self.stopping:
                log.info("server stopped with code %d", code)
                return 0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else code
            restarts += 1
            if restarts > self.options.max_restarts:
                self.failures.append(f"{tier}: crashed {restarts} times after being ready")
                log.warning("tier %s crashed %d times; trying the next tier", tier, restarts)
                return None
            log.warning("tier %s: server exited with code %d after being ready; restarting (%d/%d)",
                        tier, code, restarts, self.options.max_restarts)
        return 130
