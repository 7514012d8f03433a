"""The parent's view of its workers' heartbeats: which rank has gone silent, and for how long.

A rank is *unresponsive* when its process exists but has sent no heartbeat (see
:mod:`ddlkit.runtime.lifeline`) for longer than the run's ``unresponsive_s``. That is a
different failure from a dead rank, which the process sentinel reports at once, and from
a slow one, which keeps beating however long its step takes. Before its first beat a
rank is given extra time to start: a spawned worker imports torch first.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: extra seconds a spawned rank may take before its first beat (it imports torch)
SPAWN_START_S = 60.0


@dataclass
class Liveness:
    """Last heartbeat per rank, read from the parent ends of the ranks' lifelines."""

    started: float
    unresponsive_s: float
    start_allowance_s: float = 0.0
    last: dict[int, float] = field(default_factory=dict)

    def drain(self, rank: int, conn: Any, now: float) -> bool:
        """Read every beat waiting on ``conn``; False once the worker's end is closed."""
        try:
            while conn.poll():
                conn.recv_bytes()
                self.last[rank] = now
        except (EOFError, OSError):
            return False
        return True

    def silent_for(self, rank: int, now: float) -> float:
        """Seconds since the rank's last beat (since the start, before its first)."""
        return now - self.last.get(rank, self.started)

    def limit(self, rank: int) -> float:
        """How long the rank may be silent now."""
        if rank in self.last:
            return self.unresponsive_s
        return self.unresponsive_s + self.start_allowance_s

    def frozen(self, ranks: set[int], now: float) -> list[tuple[int, float]]:
        """``(rank, seconds silent)`` for each of ``ranks`` past its limit, longest first."""
        out = [(r, self.silent_for(r, now)) for r in ranks
               if self.silent_for(r, now) > self.limit(r)]
        return sorted(out, key=lambda item: -item[1])
