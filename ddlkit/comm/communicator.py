"""An instrumented communicator: torch.distributed calls that record what they move.

It is passed explicitly to every strategy (no global process-group state is read), and
it never changes a result: each method calls the real gloo operation on the tensor it
is given and only adds a timestamped :class:`~ddlkit.comm.events.Event`.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import torch
import torch.distributed as dist

from ddlkit.comm.events import Recorder


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


class Handle:
    """A posted non-blocking send or receive; :meth:`wait` completes and records it."""

    def __init__(self, work: Any, done: Callable[[float, float], None]) -> None:
        self._work = work
        self._done = done
        self._finished = False

    def wait(self) -> int:
        """Block until the message has moved; returns the peer rank (useful for recv)."""
        t_wait = time.perf_counter()
        self._work.wait()
        t_end = time.perf_counter()
        if not self._finished:
            self._finished = True
            self._done(t_wait, t_end)
        return self.peer

    peer: int = -1


class Communicator:
    """Point-to-point and collective operations over one gloo process group, counted.

    ``payload_bytes`` lets a strategy say how much of a message is model data (the rest
    is its small header: sample count, loss, version), so byte counts can be checked
    against the cost formulas exactly.
    """

    def __init__(self, rank: int, world_size: int, recorder: Recorder,
                 group: Any = None) -> None:
        self.rank = rank
        self.world_size = world_size
        self.recorder = recorder
        self.group = group

    # -- point to point ------------------------------------------------------------
    def send(self, tensor: torch.Tensor, dst: int, payload_bytes: int | None = None) -> None:
        """Blocking send of ``tensor`` to rank ``dst``."""
        t0 = time.perf_counter()
        dist.send(tensor, dst, group=self.group)
        t1 = time.perf_counter()
        n = _nbytes(tensor)
        pb = n if payload_bytes is None else payload_bytes
        self.recorder.add("send", dst, n, pb, t0, t0, t1)

    def recv(self, tensor: torch.Tensor, src: int | None = None,
             payload_bytes: int | None = None) -> int:
        """Blocking receive into ``tensor``; ``src=None`` takes any sender. Returns the sender.

        The buffer must be exactly the size of the incoming message: gloo aborts the
        process (uncatchably) when a message is larger than the buffer.
        """
        t0 = time.perf_counter()
        sender = dist.recv(tensor, src, group=self.group)
        t1 = time.perf_counter()
        n = _nbytes(tensor)
        pb = n if payload_bytes is None else payload_bytes
        self.recorder.add("recv", sender, n, pb, t0, t0, t1)
        return sender

    def isend(self, tensor: torch.Tensor, dst: int, payload_bytes: int | None = None) -> Handle:
        """Post a send; call ``wait()`` on the handle before reusing ``tensor``."""
        t_post = time.perf_counter()
        work = dist.isend(tensor, dst, group=self.group)
        n = _nbytes(tensor)
        pb = n if payload_bytes is None else payload_bytes
        h = Handle(work, lambda tw, te: self.recorder.add("send", dst, n, pb, t_post, tw, te))
        h.peer = dst
        return h

    def irecv(self, tensor: torch.Tensor, src: int, payload_bytes: int | None = None) -> Handle:
        """Post a receive from ``src``; the data is in ``tensor`` after ``wait()``."""
        t_post = time.perf_counter()
        work = dist.irecv(tensor, src, group=self.group)
        n = _nbytes(tensor)
        pb = n if payload_bytes is None else payload_bytes
        h = Handle(work, lambda tw, te: self.recorder.add("recv", src, n, pb, t_post, tw, te))
        h.peer = src
        return h

    # -- collectives -------------------------------------------------------------------
    def all_reduce(self, tensor: torch.Tensor) -> None:
        """gloo's built-in sum all-reduce, in place.

        gloo's internal traffic is not observable, so the bytes recorded are the
        bandwidth-optimal ring cost 2(N-1)/N * size (Patarasuk & Yuan 2009).
        """
        t0 = time.perf_counter()
        dist.all_reduce(tensor, group=self.group)
        t1 = time.perf_counter()
        n = self.world_size
        modelled = (2 * (n - 1) * _nbytes(tensor)) // n
        self.recorder.add("all_reduce", -1, modelled, modelled, t0, t0, t1)

    def broadcast(self, tensor: torch.Tensor, src: int) -> None:
        """gloo's broadcast from ``src``; records the tensor size as the bytes moved."""
        t0 = time.perf_counter()
        dist.broadcast(tensor, src, group=self.group)
        t1 = time.perf_counter()
        n = _nbytes(tensor)
        self.recorder.add("broadcast", src, n, n, t0, t0, t1)

    def barrier(self) -> None:
        """Wait until every rank arrives."""
        t0 = time.perf_counter()
        dist.barrier(group=self.group)
        t1 = time.perf_counter()
        self.recorder.add("barrier", -1, 0, 0, t0, t0, t1)

    def all_gather(self, out: list[torch.Tensor], tensor: torch.Tensor,
                   payload_bytes: int | None = None) -> None:
        """gloo's all-gather: ``out[r]`` receives rank r's ``tensor`` on every rank.

        Each rank ends up with the N−1 messages of the others, so the bytes recorded are
        (N−1)·size each way (a ring all-gather sends and receives exactly that).
        ``payload_bytes`` is the model-data part of one message, as for :meth:`send`.
        """
        t0 = time.perf_counter()
        dist.all_gather(out, tensor, group=self.group)
        t1 = time.perf_counter()
        others = self.world_size - 1
        pb = _nbytes(tensor) if payload_bytes is None else payload_bytes
        self.recorder.add("all_gather", -1, others * _nbytes(tensor), others * pb, t0, t0, t1)
