"""A warm worker pool: worker processes that stay alive across runs in one kernel.

Starting a run then costs a fresh rendezvous and process group, not new processes. A run
may use fewer workers than the pool holds (it grows when a run needs more). After a
failure, a stop or a timeout, the run's workers are ended and replaced, because a rank
that was blocked in gloo cannot be trusted again; a run that ended well returns its
workers to the pool. The pool closes at interpreter exit, on ``close()`` or at the end
of a ``with`` block, and every worker also ends by itself if the kernel dies.
"""
from __future__ import annotations

import atexit
import os
import threading
from dataclasses import dataclass
from typing import Any

from ddlkit.runtime import lifeline, worker
from ddlkit.runtime.processes import stop_processes, worker_context


@dataclass
class Member:
    """One pooled worker process, the parent's end of its two-way pipe, and of its
    :mod:`lifeline <ddlkit.runtime.lifeline>`."""

    proc: Any
    conn: Any
    lifeline: Any

    def alive(self) -> bool:
        return self.proc.pid is not None and self.proc.is_alive()


class WorkerPool:
    """Keeps ``size`` warm worker processes; see the module docstring."""

    def __init__(self, size: int = 4) -> None:
        if size < 1:
            raise ValueError(f"size={size!r} is not allowed: at least 1")
        self._ctx = worker_context()
        self._lock = threading.Lock()
        self._idle: list[Member] = []
        self._busy = 0
        self.closed = False
        self.replaced = 0
        self._idle = [self._spawn() for _ in range(size)]
        atexit.register(self.close)

    # -- for the runtime ---------------------------------------------------------------
    def acquire(self, n: int) -> list[Member]:
        """Take ``n`` live workers (starting more if needed) for one run."""
        with self._lock:
            if self.closed:
                raise RuntimeError("this worker pool is closed")
            dead = [m for m in self._idle if not m.alive()]
            self._idle = [m for m in self._idle if m.alive()]
            self._forget(dead)
            while len(self._idle) < n:
                self._idle.append(self._spawn())
            taken, self._idle = self._idle[:n], self._idle[n:]
            self._busy += n
            return taken

    def release(self, members: list[Member], healthy: set[int]) -> None:
        """Give a run's workers back: those in ``healthy`` (by index) are reused, the
        others are ended and replaced so the next run starts warm."""
        keep = [m for i, m in enumerate(members) if i in healthy and m.alive()]
        drop = [m for i, m in enumerate(members) if m not in keep]
        self._forget(drop)
        with self._lock:
            self._busy -= len(members)
            if self.closed:
                self._forget(keep)
                return
            self._idle.extend(keep)
            for _ in drop:
                self._idle.append(self._spawn())
                self.replaced += 1

    # -- for people ----------------------------------------------------------------------
    @property
    def pids(self) -> list[int]:
        """PIDs of the idle workers."""
        return [m.proc.pid for m in self._idle]

    @property
    def size(self) -> int:
        return len(self._idle) + self._busy

    def close(self) -> None:
        """End every worker of the pool (idle ones are asked politely first)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            idle, self._idle = self._idle, []
        for m in idle:
            try:
                m.conn.send(None)
            except (OSError, ValueError):
                pass
        for m in idle:
            m.proc.join(1.0)
        self._forget(idle)
        atexit.unregister(self.close)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._idle)} idle, {self._busy} busy"
        return f"WorkerPool({state}, {self.replaced} replaced)"

    # -- inside ----------------------------------------------------------------------------
    def _spawn(self) -> Member:
        mine, theirs = self._ctx.Pipe(duplex=True)
        keep, give = lifeline.pair(self._ctx)
        proc = self._ctx.Process(target=worker.serve, args=(theirs, os.getpid(), give),
                                 name="ddlkit-pool-worker", daemon=True)
        proc.start()
        theirs.close()
        give.close()
        return Member(proc, mine, keep)

    @staticmethod
    def _forget(members: list[Member]) -> None:
        stop_processes([m.proc for m in members])
        for m in members:
            m.conn.close()
            m.lifeline.close()


_shared: WorkerPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> WorkerPool:
    """The kernel's one shared pool (the panel's default), started on first use.

    Like multiprocessing's forkserver, it is per process by nature: a second pool would
    only hold a second set of idle processes.
    """
    global _shared
    with _shared_lock:
        if _shared is None or _shared.closed:
            _shared = WorkerPool()
        return _shared
