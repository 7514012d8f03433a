"""Turning raw event logs into who waited for whom: compute, communication and waiting.

A rank blocked on a message is *waiting* until its peer has also posted the matching
operation, and *communicating* from then until the operation completes. Because all
ranks share one monotonic clock on one machine, the parent can match the k-th send from
a to b with the k-th receive at b from a, and a collective's instances across ranks,
after the run. Unmatched operations (a failed run) count as waiting.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Iterable

from ddlkit.comm.events import COLLECTIVE_OPS, Event


@dataclass
class RankTotals:
    """Per-rank totals for a run."""

    rank: int
    role: str
    bytes_sent: int = 0
    bytes_received: int = 0
    payload_sent: int = 0
    payload_received: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    compute_s: float = 0.0
    comm_s: float = 0.0
    wait_s: float = 0.0
    eval_s: float = 0.0

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def split_wait(events: list[Event]) -> dict[int, float]:
    """For each communication event (by index) the seconds it spent waiting for a peer."""
    ready: dict[int, float] = {}
    sends: dict[tuple[int, int], list[int]] = defaultdict(list)
    recvs: dict[tuple[int, int], list[int]] = defaultdict(list)
    colls: dict[tuple[str, int], list[int]] = defaultdict(list)
    per_rank_coll: dict[tuple[str, int], int] = defaultdict(int)
    for i, e in enumerate(events):
        if e.op == "send":
            sends[(e.rank, e.peer)].append(i)
        elif e.op == "recv":
            recvs[(e.peer, e.rank)].append(i)
        elif e.op in COLLECTIVE_OPS:
            k = per_rank_coll[(e.op, e.rank)]
            per_rank_coll[(e.op, e.rank)] += 1
            colls[(e.op, k)].append(i)
    for pair, s_idx in sends.items():
        for a, b in zip(s_idx, recvs.get(pair, [])):
            t = max(events[a].t_post, events[b].t_post)
            ready[a] = ready[b] = t
    for idx in colls.values():
        t = max(events[i].t_post for i in idx)
        for i in idx:
            ready[i] = t
    waits: dict[int, float] = {}
    for i, e in enumerate(events):
        if e.op in ("send", "recv") or e.op in COLLECTIVE_OPS:
            blocked = e.t_end - e.t_wait
            t_ready = ready.get(i, e.t_end)
            waits[i] = min(blocked, max(0.0, t_ready - e.t_wait))
    return waits


def rank_totals(events: Iterable[Event], roles: list[str]) -> list[RankTotals]:
    """Sum bytes, messages and time by kind for every rank."""
    evs = sorted(events, key=lambda e: (e.rank, e.t_post))
    waits = split_wait(evs)
    totals = [RankTotals(rank=r, role=role) for r, role in enumerate(roles)]
    for i, e in enumerate(evs):
        t = totals[e.rank]
        if e.op == "compute":
            t.compute_s += e.t_end - e.t_post
        elif e.op == "eval":
            t.eval_s += e.t_end - e.t_post
        else:
            w = waits.get(i, 0.0)
            t.wait_s += w
            t.comm_s += (e.t_end - e.t_wait) - w
            if e.op == "send" or e.op in COLLECTIVE_OPS:
                t.bytes_sent += e.nbytes
                t.payload_sent += e.payload_bytes
                t.messages_sent += 1
            if e.op == "recv" or e.op in COLLECTIVE_OPS:
                t.bytes_received += e.nbytes
                t.payload_received += e.payload_bytes
                t.messages_received += 1
    return totals
