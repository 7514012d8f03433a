"""Fault injection: kill, drop or slow a rank at a given step, reproducibly.

A fault is written as a short spec, so it fits a config file, a CLI flag and a widget:

- ``kill:R@S``        rank R kills itself (SIGKILL; Windows has none, and ends the
                      process with TerminateProcess) when it reaches step S;
- ``drop:R@S``        rank R leaves cleanly at step S (a worker that goes away);
- ``delay:R@S=SEC``   from step S on, rank R's every step takes SEC seconds longer.

Ranks are process ranks: in parameter-server modes rank 0 is the server and worker k
is rank k; in all-reduce worker k is rank k-1. The same spec always fails the same way.
"""
from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass
from typing import Iterable

KINDS = ("kill", "drop", "delay")
#: how ``kill`` ends a process: at once, with no clean-up (os.kill with SIGTERM is
#: TerminateProcess on Windows, which has no SIGKILL)
_ABRUPT = getattr(signal, "SIGKILL", signal.SIGTERM)
_SPEC = re.compile(r"^(kill|drop|delay):(\d+)@(\d+)(?:=([0-9.]+))?$")


@dataclass(frozen=True)
class Fault:
    """One planned fault: ``kind`` on ``rank`` at ``step`` (``seconds`` for delays)."""

    kind: str
    rank: int
    step: int
    seconds: float = 0.0

    def spec(self) -> str:
        tail = f"={self.seconds:g}" if self.kind == "delay" else ""
        return f"{self.kind}:{self.rank}@{self.step}{tail}"


class LeaveRun(Exception):
    """Raised inside a rank that was told to drop out; it exits cleanly."""


def parse_fault(spec: str) -> Fault:
    """Parse one spec (see the module docstring); raises ValueError naming the problem."""
    m = _SPEC.match(spec.strip()) if isinstance(spec, str) else None
    if not m:
        raise ValueError("a spec like 'kill:2@30', 'drop:1@10' or 'delay:3@5=0.05'")
    kind, rank, step, seconds = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
    if (kind == "delay") != (seconds is not None):
        raise ValueError("'=SECONDS' goes with delay faults only")
    if step < 1:
        raise ValueError("steps count from 1")
    return Fault(kind, rank, step, float(seconds or 0.0))


class FaultPlan:
    """The faults planned for one rank, applied at the start of each of its steps."""

    def __init__(self, faults: Iterable[Fault], rank: int) -> None:
        self.faults = sorted((f for f in faults if f.rank == rank), key=lambda f: f.step)
        self.extra_delay = 0.0
        self._started = False

    def before_step(self, step: int) -> None:
        """Apply what is due by ``step``: die, leave, or start a delay; then sleep it.

        A fault planned for a step this rank skipped (a sync worker with backup workers
        jumps to the server's current step) happens at the first step after it; faults
        planned before the rank's first step (a resumed run) never happen.
        """
        if not self._started:
            self._started = True
            self.faults = [f for f in self.faults if f.step >= step]
        while self.faults and self.faults[0].step <= step:
            f = self.faults.pop(0)
            if f.kind == "kill":
                os.kill(os.getpid(), _ABRUPT)
            elif f.kind == "drop":
                raise LeaveRun(f.spec())
            else:
                self.extra_delay += f.seconds
        if self.extra_delay:
            time.sleep(self.extra_delay)
