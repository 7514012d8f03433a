"""Typed records of what each rank did, and when.

Every rank keeps a :class:`Recorder`. The communicator writes one :class:`Event` per
message or collective; strategies mark compute and evaluation spans. Times come from
``time.perf_counter`` (CLOCK_MONOTONIC on Linux), which every process on one machine
shares, so the parent can line ranks up against each other after the run.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator, NamedTuple

#: collectives whose bytes gloo moves internally; ddlkit records the ring-optimal model
COLLECTIVE_OPS = frozenset({"all_reduce", "all_gather", "broadcast", "barrier"})


class Event(NamedTuple):
    """One thing a rank did.

    ``t_post`` is when the operation was posted, ``t_wait`` when the rank began to block
    on it, ``t_end`` when it completed (all in seconds on the shared monotonic clock).
    For spans all three describe the span. ``peer`` is -1 for collectives and spans.
    ``nbytes`` is everything on the wire; ``payload_bytes`` the model/gradient part.
    ``op`` is ``send`` or ``recv``, a collective (:data:`COLLECTIVE_OPS`), a span
    (``compute``, ``eval``), or ``net``: time a sender spent on an emulated network link
    (:mod:`ddlkit.comm.network`) before handing a message to gloo, with no bytes of its own.
    """

    rank: int
    op: str
    peer: int
    nbytes: int
    payload_bytes: int
    t_post: float
    t_wait: float
    t_end: float
    step: int


EVENT_FIELDS: tuple[str, ...] = Event._fields


class Recorder:
    """An append-only, per-rank event log; the parent drains it in batches."""

    def __init__(self, rank: int) -> None:
        self.rank = rank
        self.step = 0
        self._events: list[Event] = []

    def add(self, op: str, peer: int, nbytes: int, payload_bytes: int,
            t_post: float, t_wait: float, t_end: float) -> None:
        self._events.append(Event(self.rank, op, peer, nbytes, payload_bytes,
                                  t_post, t_wait, t_end, self.step))

    @contextmanager
    def span(self, kind: str) -> Iterator[None]:
        """Mark a stretch of local work (``compute`` or ``eval``) on the timeline."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            t1 = time.perf_counter()
            self._events.append(Event(self.rank, kind, -1, 0, 0, t0, t0, t1, self.step))

    def drain(self) -> list[Event]:
        """Return and forget the events recorded since the last drain."""
        out, self._events = self._events, []
        return out
