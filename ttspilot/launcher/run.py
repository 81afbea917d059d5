"""Try tiers in order; supervise the one that comes up; fall back when it keeps failing.

A candidate fails when its process exits, readiness times out, or the canary's audio is
NaN, infinite, silent or not audio at all. A healthy server is never killed for staying up;
one that dies after being ready is restarted on the same tier, and so is one whose /health
fails `unhealthy_after` checks in a row (an engine call stuck past --call_timeout: only a new
process frees it) and a restart that dies while starting, until more than `max_restarts`
crashes fall within `restart_window` seconds (systemd's StartLimitBurst within
StartLimitIntervalSec); then the next tier is tried. A port another process holds is no tier's
fault: the launch ends at once.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from types import FrameType

from ttspilot.config import TIERS
from ttspilot.launcher.child import SERVER_SCRIPT, ServerChild
from ttspilot.launcher.port import PortUnavailable, check_port_free

log = logging.getLogger("ttspilot.launcher")

EXIT_CANNOT_LAUNCH = 2  # as for a usage error: the command line (--port, --model_dir) has to change


@dataclass(frozen=True)
class LaunchOptions:
    host: str = "127.0.0.1"
    port: int = 9234
    server_args: tuple[str, ...] = ()  # passed through to every server child
    ready_timeout: float = 180.0
    canary: bool = True
    max_restarts: int = 3
    restart_window: float = 300.0  # seconds over which max_restarts is counted
    health_interval: float = 5.0  # seconds between /health checks of a ready server; 0: no checks
    unhealthy_after: int = 3  # failed /health checks in a row that make a ready server be restarted
    api_key: str | None = field(default=None, repr=False)  # reaches the child through its environment


def server_command(tier: str, options: LaunchOptions) -> list[str]:
    """The exact command that starts one tier; printed by --dry_run."""
    command = [sys.executable, str(SERVER_SCRIPT), *TIERS[tier].cli_args(), "--host", options.host]
    command += ["--port", str(options.port), *options.server_args]
    return command + ([] if options.canary else ["--no_canary"])


@dataclass(frozen=True)
class Crash:
    monotonic: float
    wall: float
    cause: str

    def __str__(self) -> str:
        return f"{time.strftime('%H:%M:%S', time.localtime(self.wall))} {self.cause}"


@dataclass
class RestartBudget:
    """At most `limit` restarts for the crashes within any `window` seconds; older crashes are forgiven."""

    limit: int
    window: float
    crashes: deque[Crash] = field(default_factory=deque)

    def allows_restart_after(self, cause: str) -> bool:
        now = time.monotonic()
        self.crashes.append(Crash(now, time.time(), cause))
        while now - self.crashes[0].monotonic > self.window:
            self.crashes.popleft()
        return len(self.crashes) <= self.limit

    def usage(self) -> str:
        return f"{len(self.crashes)}/{self.limit} within {self.window:g} s"

    def summary(self) -> str:
        return f"{len(self.crashes)} crashes within {self.window:g} s: " + "; ".join(map(str, self.crashes))


@dataclass
class Supervisor:
    """Owns the current child, forwards SIGINT/SIGTERM to it and stops it however the launcher ends."""

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
            for number, tier in enumerate(tiers, 1):
                code = self._serve_tier(tier, last=number == len(tiers))
                if code is not None:
                    return code
            log.error("no tier came up; failures: %s", " | ".join(self.failures) or "none tried")
            return 1
        except PortUnavailable as error:
            log.error("%s", error)
            return EXIT_CANNOT_LAUNCH
        finally:
            if self.child is not None:
                self.child.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _start(self, tier: str) -> str | None:
        """Start the tier and check it; None when it is live, else the failure reason.

        Raises PortUnavailable when the port is taken before the start or turns out taken after a failed one.
        """
        check_port_free(self.options.host, self.options.port)
        url = f"http://{self.options.host}:{self.options.port}"
        child = ServerChild(server_command(tier, self.options), url, api_key=self.options.api_key)
        log.info("tier %s: starting %s", tier, " ".join(child.command[1:]))
        started = time.monotonic()
        child.start()
        self.child = child  # from here on, run() stops it however the launch ends
        if self.stopping:  # a signal came before there was a child to forward it to
            child.signal(signal.SIGTERM)
        reason = child.wait_ready(self.options.ready_timeout)
        if reason is None and self.options.canary and not self.stopping:
            reason = child.canary()
        if reason is not None:
            child.stop()
            if not self.stopping:
                check_port_free(self.options.host, self.options.port)
            return reason
        log.info("tier %s: ready in %.1f s, serving on %s (pid %d)", tier, time.monotonic() - started, url,
                 child.process.pid)
        return None

    def _serve_tier(self, tier: str, last: bool) -> int | None:
        """Exit code when serving ended for good; None to move to the next tier."""
        budget = RestartBudget(self.options.max_restarts, self.options.restart_window)
        next_step = "no tier left" if last else "trying the next tier"
        was_ready = False
        while not self.stopping:
            reason = self._start(tier)
            if self.stopping:
                return 0 if reason is None else 130
            if reason is not None and not was_ready:
                self.failures.append(f"{tier}: {reason}")
                log.warning("tier %s failed: %s; %s", tier, reason, next_step)
                return None
            if reason is None:
                was_ready = True
                unhealthy = self._watch_health()
                self.child.stop()  # SIGTERM, then SIGKILL after a grace: a stuck server may never exit by itself
                code = self.child.process.returncode
                if self.stopping:
                    log.info("server stopped with code %d", code)
                    return 0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else code
                cause = (f"server unhealthy after being ready ({unhealthy})" if unhealthy is not None
                         else f"server {self.child.exit_reason()} after being ready")
            else:
                cause = f"restart failed: {reason}"
            if not budget.allows_restart_after(cause):
                self.failures.append(f"{tier}: {budget.summary()}")
                log.warning("tier %s: %s; %s", tier, budget.summary(), next_step)
                return None
            log.warning("tier %s: %s; restarting (%s)", tier, cause, budget.usage())
        return 130

    def _watch_health(self) -> str | None:
        """Wait while the ready child runs; the /health problem once it fails `unhealthy_after` checks in a row.

        None when the child exited (or the launcher is stopping).
        """
        interval, failures = self.options.health_interval, 0
        while True:
            try:
                self.child.process.wait(interval if interval > 0 else None)
                return None
            except subprocess.TimeoutExpired:
                pass
            if self.stopping:
                continue
            problem = self.child.health_problem(timeout=interval)
            failures = failures + 1 if problem is not None else 0
            if failures >= self.options.unhealthy_after:
                return problem
