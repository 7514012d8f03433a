"""Collecting what ranks report: live events while a run goes, a RunResult at the end.

Ranks send the typed messages of :mod:`ddlkit.comm.protocol` (``Ready``, ``Progress``,
``EvalRow``, ``Events``, then ``Done``, ``Failed`` or ``Left``; a server also sends
``WorkerLost``). The collector reads them by type and emits the parent's own live stream,
the events of :mod:`ddlkit.runtime.live`, to ``on_event``. The local runtime feeds
messages from pipes as they arrive; the torchrun launcher feeds them from every rank at
the end. Times are made relative to ``t0``; with ``align_clocks`` each rank's monotonic
clock is first mapped through its wall clock, for ranks on different machines (whose wall
clocks should be NTP-synced).
"""
from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch

from ddlkit.comm import protocol
from ddlkit.comm.accounting import rank_totals
from ddlkit.comm.events import COLLECTIVE_OPS, Event
from ddlkit.config import Experiment
from ddlkit.runtime import live
from ddlkit.runtime.result import RunResult


class Collector:
    """Everything the ranks of one run have reported so far."""

    def __init__(self, roles: list[str], t0: float, on_event: live.OnEvent | None = None,
                 tolerated: set[int] | None = None, align_clocks: bool = False) -> None:
        self.roles = roles
        self.t0 = t0
        self.on_event = on_event
        self.tolerated = tolerated or set()
        self.align_clocks = align_clocks
        self.offsets: dict[int, float] = {}
        self.first_event: float | None = None
        self.events: list[tuple[Any, ...]] = []
        self.history: list[dict[str, Any]] = []
        self.outputs: dict[int, dict[str, Any]] = {}
        self.errors: dict[int, str] = {}
        self.lost: dict[int, dict[str, Any]] = {}
        self.live_bytes = 0

    def feed(self, msg: protocol.Message, now: float | None = None) -> None:
        """Take one message from a rank. ``now`` is the receipt time (perf_counter)."""
        if not isinstance(msg, protocol.MESSAGE_TYPES):
            raise TypeError(f"a Collector takes the messages of ddlkit.comm.protocol "
                            f"(Ready, Progress, ...), not {type(msg).__name__}: {msg!r:.80}")
        now = (time.perf_counter() if now is None else now) - self.t0
        if self.first_event is None:
            self.first_event = now
        rank = msg.rank
        match msg:
            case protocol.Ready():
                self.offsets[rank] = msg.wall_time - msg.perf_time
                self._emit(live.RankReady(rank, now, msg.pid))
            case protocol.Progress():
                self._emit(live.Progress(msg.step, msg.total, msg.samples,
                                         self._time(rank, msg.t)))
            case protocol.EvalRow():
                row = dict(msg.row)
                row["t"] = self._time(rank, row["t"])
                row["bytes"] = self.live_bytes
                self.history.append(row)
                # a copy: history rows get exact bytes later
                self._emit(live.EvalPoint(dict(row)))
            case protocol.Events():
                self.events.extend(msg.events)
                self.live_bytes += sum(e[3] for e in msg.events
                                       if e[1] == "send" or e[1] in COLLECTIVE_OPS)
                if self.on_event is not None:
                    self._emit(live.CommEvents(rank, [self.event(e) for e in msg.events]))
            case protocol.Done():
                self.outputs[rank] = msg.output
            case protocol.Failed():
                self.errors[rank] = msg.traceback
            case protocol.Left():  # a planned, clean departure
                if rank in self.tolerated:
                    self.lose(rank, how=f"left ({msg.reason})")
                else:
                    self.errors[rank] = f"rank {rank} left the run ({msg.reason})"
            case protocol.WorkerLost():  # the server's view of a lost worker
                self.lose(msg.lost_rank, step=msg.step, noticed_by_server=msg.reason)

    def lose(self, rank: int, **info: Any) -> None:
        """Record that ``rank`` was lost and the run went on without it."""
        entry = self.lost.setdefault(rank, {"rank": rank, "t": time.perf_counter() - self.t0})
        entry.update(info)
        self._emit(live.RankLost(rank, entry["t"], dict(entry)))

    def event(self, raw: tuple[Any, ...]) -> Event:
        """A raw event tuple as an :class:`Event` with times relative to the run start."""
        e = Event(*raw)
        return e._replace(t_post=self._time(e.rank, e.t_post), t_wait=self._time(e.rank, e.t_wait),
                          t_end=self._time(e.rank, e.t_end))

    def result(self, exp: Experiment, status: str, error: str | None,
               error_detail: str | None, wall: float) -> RunResult:
        """Everything collected so far, as a :class:`RunResult` (partial after a failure)."""
        events = sorted((self.event(e) for e in self.events), key=lambda e: e.t_post)
        cumulative_bytes(self.history, events)
        out0 = self.outputs.get(0, {})
        params = out0.get("final_params")
        return RunResult(
            config=exp, status=status, error=error, error_detail=error_detail,
            wall_time_s=wall, first_event_s=self.first_event, history=self.history,
            ranks=rank_totals(events, self.roles), events=events,
            staleness=list(out0.get("staleness", [])),
            applied=[list(r) for r in out0.get("applied", [])],
            dropped=[list(r) for r in out0.get("dropped", [])],
            lost=[self.lost[r] for r in sorted(self.lost)],
            final_params=None if params is None else np.asarray(params),
            meta={"world_size": len(self.roles), "roles": self.roles,
                  "torch": torch.__version__, "pid": os.getpid(),
                  "started_unix": time.time() - wall})

    def _time(self, rank: int, t: float) -> float:
        if self.align_clocks and rank in self.offsets and 0 in self.offsets:
            t += self.offsets[rank] - self.offsets[0]
        return t - self.t0

    def _emit(self, event: Any) -> None:
        if self.on_event is not None:
            self.on_event(event)


def cumulative_bytes(history: list[dict[str, Any]], events: list[Event]) -> None:
    """Set each history row's ``bytes``: everything sent by all ranks up to its time."""
    sent = sorted((e.t_end, e.nbytes) for e in events
                  if e.op == "send" or e.op in COLLECTIVE_OPS)
    times = np.array([t for t, _ in sent])
    cum = np.cumsum([n for _, n in sent]) if sent else np.array([])
    for row in history:
        k = int(np.searchsorted(times, row["t"], side="right"))
        row["bytes"] = int(cum[k - 1]) if k else 0
