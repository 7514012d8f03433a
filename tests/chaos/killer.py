"""The outside killer: a thread that signals one rank's process at a chosen moment.

It is not ddlkit's ``faults`` spec: it finds the victim the way an outsider would, by the
process name ``ddlkit-rank{N}`` among ``multiprocessing.active_children()``, polling from the
moment ``run()`` is called, so it can hit a rank while the process group is still forming.
It holds a pidfd of the victim, so a signal never reaches a reused PID, and it listens to the
run's live events to know when the victim joined, when a step was reached and when the
victim was reported lost. After a SIGSTOP, :meth:`Killer.resume` continues the process if it
still exists, so nothing is left stopped.
"""
from __future__ import annotations

import multiprocessing
import os
import select
import signal
import threading
import time
from dataclasses import dataclass

from ddlkit.runtime.live import Progress, RankLost, RankReady
from tests.chaos.plan import Case
from tests.procs import running

#: how often the killer looks for the victim's process before it exists
POLL_S = 0.002


@dataclass
class Hit:
    """What the killer did: ``sent`` the signal at ``t`` (monotonic), or ``missed`` (why).
    ``joined``: the parent had reported every rank joined (RankReady) before the hit: the
    process group had formed, so a mode that survives a lost worker must survive this one."""

    pid: int | None = None
    sent: bool = False
    missed: str = ""
    t: float = 0.0
    joined: bool = False


class Killer:
    """Hits ``case.victim`` with ``case.signal`` at ``case``'s moment (see :mod:`.plan`)."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.hit = Hit()
        self.ready: set[int] = set()
        #: monotonic times: the run's last step reported, the victim reported lost
        self.last_step_at: float | None = None
        self.lost_at: float | None = None
        self.t_call = 0.0
        self._step_reached = threading.Event()
        self._finished = threading.Event()
        self._pidfd: int | None = None
        self._thread = threading.Thread(target=self._run, name="chaos-killer", daemon=True)

    def on_event(self, event: object) -> None:
        """The run's ``on_event``: note joins, steps and losses."""
        now = time.monotonic()
        if isinstance(event, RankReady):
            self.ready.add(event.rank)
        elif isinstance(event, Progress):
            if event.step >= self.case.at_step:
                self._step_reached.set()
            if event.step >= event.total:
                self.last_step_at = now
        elif isinstance(event, RankLost) and event.rank == self.case.victim:
            self.lost_at = self.lost_at or now

    def start(self) -> None:
        """Start watching; call it just before ``ddlkit.run``."""
        self.t_call = time.monotonic()
        self._thread.start()

    def finish(self) -> None:
        """The run has returned: a hit not made yet is missed."""
        self._finished.set()
        self._thread.join()

    def victim_alive(self) -> bool:
        """Whether the victim's process still exists (not yet exited)."""
        if self._pidfd is None:
            return False
        return not select.select([self._pidfd], [], [], 0)[0]

    def resume(self) -> None:
        """Continue a stopped victim that still exists, then let go of its pidfd."""
        if self._pidfd is None:
            return
        if self.case.signal == "STOP":
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGCONT)
            except ProcessLookupError:
                pass
        os.close(self._pidfd)
        self._pidfd = None

    # -- the thread ---------------------------------------------------------------------
    def _run(self) -> None:
        born = self._find_victim()
        if born is None:
            self.hit.missed = "its process never appeared before the run ended"
            return
        if not self._wait_for_moment(born):
            self.hit.missed = "the run ended before the moment came"
            return
        pid = self.hit.pid
        assert pid is not None and self._pidfd is not None
        if not running(pid):
            self.hit.missed = "its process had already exited"
            return
        try:
            signal.pidfd_send_signal(self._pidfd, self.case.signum)
        except ProcessLookupError:
            self.hit.missed = "its process had already exited"
            return
        self.hit.t = time.monotonic()
        self.hit.sent = True
        self.hit.joined = len(self.ready) == self.case.experiment().world_size

    def _find_victim(self) -> float | None:
        """Poll until the victim's process exists; open a pidfd of it. Returns when it was
        first seen (monotonic), or None if the run ended first."""
        name = f"ddlkit-rank{self.case.victim}"
        while not self._finished.is_set():
            for proc in multiprocessing.active_children():
                if proc.name == name and proc.pid is not None:
                    try:
                        self._pidfd = os.pidfd_open(proc.pid)
                    except ProcessLookupError:
                        return None
                    self.hit.pid = proc.pid
                    return time.monotonic()
            time.sleep(POLL_S)
        return None

    def _wait_for_moment(self, born: float) -> bool:
        """Wait for the planned moment; False if the run ended first."""
        case = self.case
        if case.moment == "step":
            while not self._step_reached.wait(0.01):
                if self._finished.is_set():
                    return False
            return True
        start = born if case.moment == "start" else self.t_call
        return not self._finished.wait(max(0.0, start + case.delay_s - time.monotonic()))
