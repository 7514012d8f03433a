"""An instrumented communicator: torch.distributed calls that record what they move.

It is passed explicitly to every strategy (no global process-group state is read), and
it never changes a result: each method calls the real gloo operation on the tensor it
is given and only adds a timestamped :class:`~ddlkit.comm.events.Event`.

With a :class:`~ddlkit.comm.network.Network` it also emulates a slower network, in one
place, :meth:`Communicator._emulate`, which every operation calls:

- a point-to-point send (``send``, ``isend``) first sleeps α + bytes/B, recorded as a
  ``net`` event (communication on the timeline, no bytes, no message), then hands the
  message to gloo. Its ``send`` event is posted at the start of that sleep, so the
  receiver's wait for it ends there and the wire time counts as communication on both
  sides, whoever receives it (a :class:`~ddlkit.comm.inbox.Inbox` too). Sends of one rank
  are serialised: N sends cost N·(α + bytes/B). :meth:`Communicator.isend_all` posts one
  message to several ranks at once: they share the link, and all reach gloo after
  N·(α + bytes/B);
- a receive (``recv``, ``irecv``, an inbox's) then crosses the rank's own
  :class:`~ddlkit.comm.network.InboundLink`: messages arriving together queue one after
  another, α + bytes/B each (incast at a server). The wait is part of the receive's event;
- a collective sleeps its modelled cost (ring all-reduce 2(N−1)·α + 2(N−1)/N·bytes/B)
  inside its own event, before gloo's operation: the rank is blocked in the collective.
"""
from __future__ import annotations

import copy
import time
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist

from ddlkit.comm.events import Recorder
from ddlkit.comm.network import InboundLink, Network


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _sleep_until(deadline: float) -> None:
    """Sleep until ``deadline`` on the perf_counter clock (re-sleeping if woken early)."""
    while (left := deadline - time.perf_counter()) > 0:
        time.sleep(left)


class Handle:
    """A posted non-blocking send or receive; :meth:`wait` completes and records it."""

    def __init__(self, work: Any, done: Callable[[float, float], None],
                 arrive: Callable[[float], float] | None = None) -> None:
        self._work = work
        self._done = done
        self._arrive = arrive
        self._finished = False

    def wait(self) -> int:
        """Block until the message has moved; returns the peer rank (useful for recv)."""
        t_wait = time.perf_counter()
        self._work.wait()
        t_end = time.perf_counter()
        if self._arrive is not None and not self._finished:
            t_end = self._arrive(t_end)  # a receive crosses the inbound link
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
                 group: Any = None, network: Network | None = None) -> None:
        self.rank = rank
        self.world_size = world_size
        self.recorder = recorder
        self.group = group
        self.network = network
        self.inbound = InboundLink()  # this rank's; shared by copies (the same rank)

    def with_network(self, network: Network | None) -> Communicator:
        """The same communicator (rank, group, recorder) emulating ``network``."""
        other = copy.copy(self)
        other.network = network
        return other

    # -- network emulation ----------------------------------------------------------------
    def _emulate(self, op: str, nbytes: int, peer: int = -1) -> float:
        """Sleep what ``op`` of ``nbytes`` costs on the emulated network; returns when the
        operation began (before the sleep). Point-to-point sends record the sleep as a
        ``net`` event; collectives count it inside their own event. Without a network
        this costs nothing."""
        t0 = time.perf_counter()
        net = self.network
        if net is None:
            return t0
        n = self.world_size
        cost: dict[str, Callable[[], float]] = {
            "send": lambda: net.delay(nbytes),
            "all_reduce": lambda: net.ring_all_reduce(nbytes, n),
            "all_gather": lambda: net.ring_all_gather(nbytes, n),
            "broadcast": lambda: net.broadcast(nbytes, n),
            "barrier": lambda: net.barrier(n),
        }
        if op not in cost:
            raise ValueError(f"op: {op!r} has no emulated cost; one of {', '.join(cost)}")
        _sleep_until(t0 + cost[op]())
        if op == "send":
            self.recorder.add("net", peer, 0, 0, t0, t0, time.perf_counter())
        return t0

    def cross_inbound(self, nbytes: int, arrived: float) -> float:
        """A message of ``nbytes`` arrived at ``arrived``: sleep until it has crossed this
        rank's inbound link, after the messages before it (incast); returns that time.
        Without a network it has crossed on arrival."""
        net = self.network
        if net is None:
            return arrived
        done = self.inbound.cross(arrived, net.delay(nbytes))
        _sleep_until(done)
        return max(done, arrived)

    # -- point to point ------------------------------------------------------------
    def send(self, tensor: torch.Tensor, dst: int, payload_bytes: int | None = None) -> None:
        """Blocking send of ``tensor`` to rank ``dst``."""
        n = _nbytes(tensor)
        t0 = self._emulate("send", n, dst)
        t_wait = time.perf_counter()
        dist.send(tensor, dst, group=self.group)
        t1 = time.perf_counter()
        pb = n if payload_bytes is None else payload_bytes
        self.recorder.add("send", dst, n, pb, t0, t_wait, t1)

    def recv(self, tensor: torch.Tensor, src: int | None = None,
             payload_bytes: int | None = None) -> int:
        """Blocking receive into ``tensor``; ``src=None`` takes any sender. Returns the sender.

        The buffer must be exactly the size of the incoming message: gloo aborts the
        process (uncatchably) when a message is larger than the buffer.
        """
        t0 = time.perf_counter()
        sender = dist.recv(tensor, src, group=self.group)
        n = _nbytes(tensor)
        t1 = self.cross_inbound(n, time.perf_counter())
        pb = n if payload_bytes is None else payload_bytes
        self.recorder.add("recv", sender, n, pb, t0, t0, t1)
        return sender

    def isend(self, tensor: torch.Tensor, dst: int, payload_bytes: int | None = None) -> Handle:
        """Post a send; call ``wait()`` on the handle before reusing ``tensor``."""
        n = _nbytes(tensor)
        t_post = self._emulate("send", n, dst)
        work = dist.isend(tensor, dst, group=self.group)
        pb = n if payload_bytes is None else payload_bytes
        h = Handle(work, lambda tw, te: self.recorder.add("send", dst, n, pb, t_post, tw, te))
        h.peer = dst
        return h

    def isend_all(self, tensor: torch.Tensor, dsts: Sequence[int],
                  payload_bytes: int | None = None) -> list[Handle]:
        """Post ``tensor`` to every rank in ``dsts`` at once; wait on every handle.

        On an emulated network the messages share this rank's link, as concurrent flows
        do: one ``net`` sleep each, back to back, and only then are all handed to gloo, so
        every receiver gets its copy N·(α + bytes/B) after the first sleep began.
        """
        n = _nbytes(tensor)
        pb = n if payload_bytes is None else payload_bytes
        t_post = time.perf_counter()
        for dst in dsts:
            self._emulate("send", n, dst)
        handles = []
        for dst in dsts:
            work = dist.isend(tensor, dst, group=self.group)
            h = Handle(work, self._record_send(dst, n, pb, t_post))
            h.peer = dst
            handles.append(h)
        return handles

    def _record_send(self, dst: int, n: int, pb: int,
                     t_post: float) -> Callable[[float, float], None]:
        return lambda t_wait, t_end: self.recorder.add("send", dst, n, pb, t_post, t_wait, t_end)

    def irecv(self, tensor: torch.Tensor, src: int, payload_bytes: int | None = None) -> Handle:
        """Post a receive from ``src``; the data is in ``tensor`` after ``wait()``."""
        t_post = time.perf_counter()
        work = dist.irecv(tensor, src, group=self.group)
        n = _nbytes(tensor)
        pb = n if payload_bytes is None else payload_bytes
        h = Handle(work, lambda tw, te: self.recorder.add("recv", src, n, pb, t_post, tw, te),
                   lambda t: self.cross_inbound(n, t))
        h.peer = src
        return h

    # -- collectives -------------------------------------------------------------------
    def all_reduce(self, tensor: torch.Tensor) -> None:
        """gloo's built-in sum all-reduce, in place.

        gloo's internal traffic is not observable, so the bytes recorded are the
        bandwidth-optimal ring cost 2(N-1)/N * size (Patarasuk & Yuan 2009).
        """
        t0 = self._emulate("all_reduce", _nbytes(tensor))
        dist.all_reduce(tensor, group=self.group)
        t1 = time.perf_counter()
        n = self.world_size
        modelled = (2 * (n - 1) * _nbytes(tensor)) // n
        self.recorder.add("all_reduce", -1, modelled, modelled, t0, t0, t1)

    def broadcast(self, tensor: torch.Tensor, src: int) -> None:
        """gloo's broadcast from ``src``; records the tensor size as the bytes moved."""
        t0 = self._emulate("broadcast", _nbytes(tensor))
        dist.broadcast(tensor, src, group=self.group)
        t1 = time.perf_counter()
        n = _nbytes(tensor)
        self.recorder.add("broadcast", src, n, n, t0, t0, t1)

    def barrier(self) -> None:
        """Wait until every rank arrives."""
        t0 = self._emulate("barrier", 0)
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
        t0 = self._emulate("all_gather", _nbytes(tensor) * self.world_size)  # the result
        dist.all_gather(out, tensor, group=self.group)
        t1 = time.perf_counter()
        others = self.world_size - 1
        pb = _nbytes(tensor) if payload_bytes is None else payload_bytes
        self.recorder.add("all_gather", -1, others * _nbytes(tensor), others * pb, t0, t0, t1)
