"""An inbox for a server: one message at a time from each sender, taken in arrival order.

A listener thread per sender posts a receive *from that sender* and waits in gloo (the
GIL is released there, so idle listeners cost nothing). The server takes whichever
message arrived first. Receiving from one named sender, unlike gloo's receive-from-any,
fails as soon as that sender's connection closes, so a lost worker is reported within
moments instead of at gloo's timeout; the other senders carry on. On an emulated network
every message then crosses the server's one inbound link
(:meth:`~ddlkit.comm.communicator.Communicator.cross_inbound`), so pushes that arrive
together are taken one link-time apart (incast).
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Sequence

import torch
import torch.distributed as dist

from ddlkit.comm.communicator import Communicator


class SenderLost(Exception):
    """A sender's connection closed: its process died or left."""

    def __init__(self, sender: int, reason: str) -> None:
        self.sender = sender
        if "Connection closed by peer" in reason:
            reason = "its connection closed (the process died or left)"
        super().__init__(f"rank {sender} is gone: {reason.splitlines()[0][:200]}")


class Inbox:
    """Receive fixed-size messages from ``senders`` into one buffer per sender.

    Call :meth:`take` to get the next sender whose message has arrived (its data is in
    ``buffers[sender]``), and :meth:`release` once that buffer has been read, which lets
    the sender's next message in. Events are recorded as blocking only for the time the
    server actually waited in :meth:`take`.
    """

    def __init__(self, comm: Communicator, senders: Sequence[int],
                 buffers: dict[int, torch.Tensor], payload_bytes: int) -> None:
        self.comm = comm
        self.buffers = buffers
        self.payload_bytes = payload_bytes
        self.lost: set[int] = set()
        self._closed = False
        self._arrivals: queue.SimpleQueue[tuple[int, float, float, str | None]] = (
            queue.SimpleQueue())
        self._go = {s: threading.Event() for s in senders}
        for s in senders:
            self._go[s].set()
            threading.Thread(target=self._listen, args=(s,), daemon=True,
                             name=f"ddlkit-inbox-{s}").start()

    def _listen(self, sender: int) -> None:
        buf = self.buffers[sender]
        while True:
            self._go[sender].wait()
            self._go[sender].clear()
            if self._closed:
                return
            t_post = time.perf_counter()
            try:
                work = dist.irecv(buf, sender, group=self.comm.group)
                if work is None:  # torch's answer to a rank outside the group
                    raise RuntimeError(f"rank {self.comm.rank} is not in the inbox's group")
                work.wait()
            except Exception as err:  # noqa: BLE001 - the connection closed, or we shut down
                if not self._closed:
                    self._arrivals.put((sender, t_post, time.perf_counter(), str(err)))
                return
            nbytes = buf.numel() * buf.element_size()
            arrived = self.comm.cross_inbound(nbytes, time.perf_counter())  # incast queue
            self._arrivals.put((sender, t_post, arrived, None))

    def take(self) -> int:
        """Block until a message has arrived; return its sender.

        Raises :class:`SenderLost` (once per sender) when a sender's connection closes.
        Senders already given up with :meth:`forget` are skipped.
        """
        t_wait = time.perf_counter()
        while True:
            sender, t_post, t_arrived, error = self._arrivals.get()
            if sender not in self.lost:
                break
        now = time.perf_counter()
        if error is not None:
            self.lost.add(sender)
            raise SenderLost(sender, error)
        t_end = now if t_arrived > t_wait else t_wait
        nbytes = self.buffers[sender].numel() * self.buffers[sender].element_size()
        self.comm.recorder.add("recv", sender, nbytes, self.payload_bytes, t_post, t_wait, t_end)
        return sender

    def close(self) -> None:
        """No more messages are expected: listeners stop instead of posting receives."""
        self._closed = True
        for go in self._go.values():
            go.set()

    def forget(self, sender: int) -> None:
        """Give up on ``sender`` (found gone another way); ignore what it still delivers."""
        self.lost.add(sender)

    def release(self, sender: int) -> None:
        """The buffer of ``sender`` has been read: let its next message in."""
        self._go[sender].set()
