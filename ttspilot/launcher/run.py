"""Try candidates in order; supervise the one that comes up; fall back when it keeps failing.

A candidate fails when its process exits, readiness times out, or the canary's audio is
NaN, infinite, silent, clipped or not audio at all. What comes next (`after_failure`): a
candidate with vLLM that fails is retried as its tier alone; an FP16 tier whose canary finds
NaN, silence or clipping rules out every FP16 tier left, and the next FP32 tier is tried;
anything else moves to the next candidate. A healthy server is never killed for staying up;
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

from ttspilot.canary import PRECISION_FAULTS
from ttspilot.launcher.child import SERVER_SCRIPT, Failure, ServerChild
from ttspilot.launcher.port import PortUnavailable, check_port_free
from ttspilot.tiers import Candidate

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


def server_command(candidate: Candidate, options: LaunchOptions) -> list[str]:
    """The exact command that starts one candidate; printed by --dry_run."""
    command = [sys.executable, str(SERVER_SCRIPT), *candidate.config.cli_args(), "--host", options.host]
    command += ["--port", str(options.port), *options.server_args]
    return command + ([] if options.canary else ["--no_canary"])


def after_failure(failed: Candidate, failure: Failure, remaining: Sequence[Candidate]) -> tuple[list[Candidate], str]:
    """The candidates left to try after `failed` failed, and the one log line that says what comes next and why."""
    if failed.vllm:
        alone = next((c for c in remaining if c.tier == failed.tier and not c.vllm), None)
        rest = [c for c in remaining if c is not alone]
        line = f"vLLM dropped: {failure.reason}; trying {failed.tier} without it"
        return [alone or Candidate(failed.tier, "vLLM dropped"), *rest], line
    fp32 = [c for c in remaining if not c.config.fp16]
    if failed.config.fp16 and failure.canary_fault in PRECISION_FAULTS and fp32:
        skipping = [c.label for c in remaining if c.config.fp16]
        line = (f"FP16 failed the canary on {failed.label} ({failure.reason.removeprefix('canary failed: ')}): "
                f"falling back to FP32, next {fp32[0].label}")
        return fp32, line + (f" (skipping {', '.join(skipping)})" if skipping else "")
    return list(remaining), f"tier {failed.label} failed: {failure.reason}; " + (
        "trying the next tier" if remaining else "no tier left")


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

    def run(self, candidates: Sequence[Candidate]) -> int:
        """Serve on the first candidate that works; return the exit code for the launcher."""
        previous = {sig: signal.signal(sig, self._forward) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            remaining = list(candidates)
            while remaining:
                candidate = remaining.pop(0)
                outcome = self._serve(candidate)
                if not isinstance(outcome, Failure):
                    return outcome
                self.failures.append(f"{candidate.label}: {outcome.reason}")
                remaining, line = after_failure(candidate, outcome, remaining)
                log.warning("%s", line)
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

    def _start(self, candidate: Candidate) -> Failure | None:
        """Start the candidate and check it; None when it is live, else why it failed.

        Raises PortUnavailable when the port is taken before the start or turns out taken after a failed one.
        """
        check_port_free(self.options.host, self.options.port)
        url = f"http://{self.options.host}:{self.options.port}"
        child = ServerChild(server_command(candidate, self.options), url, api_key=self.options.api_key)
        log.info("tier %s: starting %s", candidate.label, " ".join(child.command[1:]))
        started = time.monotonic()
        child.start()
        self.child = child  # from here on, run() stops it however the launch ends
        if self.stopping:  # a signal came before there was a child to forward it to
            child.signal(signal.SIGTERM)
        failure = child.wait_ready(self.options.ready_timeout)
        if failure is None and self.options.canary and not self.stopping:
            failure = child.canary()
        if failure is not None:
            child.stop()
            if not self.stopping:
                check_port_free(self.options.host, self.options.port)
            return failure
        log.info("tier %s: ready in %.1f s, serving on %s (pid %d)", candidate.label, time.monotonic() - started, url,
                 child.process.pid)
        return None

    def _serve(self, candidate: Candidate) -> int | Failure:
        """Exit code when serving ended for good; the failure when the next candidate should be tried."""
        budget = RestartBudget(self.options.max_restarts, self.options.restart_window)
        tier = candidate.label
        was_ready = False
        while not self.stopping:
            failure = self._start(candidate)
            if self.stopping:
                return 0 if failure is None else 130
            if failure is not None and not was_ready:
                return failure
            if failure is None:
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
                cause = f"restart failed: {failure.reason}"
            if not budget.allows_restart_after(cause):
                return Failure(budget.summary())
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
