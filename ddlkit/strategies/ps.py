"""The parameter-server scaffold that ``sync``, ``async`` and ``ssp`` share.

Rank 0 is the server (协调节点), ranks 1..N are the workers (代理节点). Every worker runs
:func:`work`: compute a gradient, push it with a :class:`Header` (its sample count, its
batch loss and a tag), pull the model followed by one float, the *tail*; and again. Every
server is a :class:`PSServer`: the model and its optimiser, an inbox with a buffer per
worker, the live workers, and the three things all servers do alike: answer a worker
(:meth:`~PSServer.reply`), lose one (:meth:`~PSServer.lose`) and end a step. The modes
differ only in their rule:

- ``sync`` (:mod:`.sync_ps`): the tag and the tail are steps. The server waits for the
  first N−b gradients of each step and broadcasts their average (Chen et al. 2016, §3).
- ``async`` (:mod:`.async_ps`, Dean et al. 2012) and ``ssp`` (:mod:`.ssp`, Ho et al. 2013):
  the tag is the version the worker pulled, the tail the version it gets, or stop. Both
  build on :mod:`.gated_ps`: each push is answered once a gate lets its worker go.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ddlkit.comm.communicator import Handle
from ddlkit.comm.compress.codec import GradientCodec
from ddlkit.comm.inbox import Inbox
from ddlkit.config import Experiment
from ddlkit.modes import MODES
from ddlkit.strategies.common import TrainLoss, end_of_step, resume_point
from ddlkit.strategies.context import Context
from ddlkit.train.trainer import Trainer

LOST_REPLY = "its connection closed while receiving the model"


class Header:
    """The header of a gradient message, by name (a view: writing sets the message's).

    Works on any message a :class:`GradientCodec` frames, compressed or not.
    """

    def __init__(self, floats: torch.Tensor) -> None:
        self.floats = floats

    def write(self, samples: int, loss: float, tag: int) -> None:
        self.floats[0], self.floats[1], self.floats[2] = samples, loss, tag

    @property
    def samples(self) -> float:
        """How many samples the gradient is the mean over."""
        return float(self.floats[0])

    @property
    def loss(self) -> float:
        """The mean batch loss the worker saw."""
        return float(self.floats[1])

    @property
    def step(self) -> int:
        """The tag in sync: the step the gradient is for."""
        return int(self.floats[2])

    @property
    def version(self) -> int:
        """The tag in async and SSP: the version of the model the gradient was computed on."""
        return int(self.floats[2])


#: a worker's rule: from the step just done and the tail of the reply it got, the next
#: (step, tag) to compute and send, or None: stop
NextStep = Callable[[Experiment, int, float], tuple[int, int] | None]


def work(ctx: Context, resumed_tail: Callable[[Experiment, int], float],
         next_step: NextStep) -> None:
    """A worker's loop, the article's steps 3, 5, 8 and 9, as long as ``next_step`` says.

    ``resumed_tail(exp, start)`` is the tail a worker starting at step ``start`` (0, or a
    checkpoint's step) would have been sent, so ``next_step`` gives the first step too.
    """
    exp, comm = ctx.exp, ctx.comm
    sizes = MODES[exp.mode].header  # push: samples, loss, tag; pull: the tail
    trainer = Trainer(exp, worker_index=ctx.worker_index, extra=sizes.pull)
    model_bytes = trainer.numel * trainer.model.flat.element_size()
    codec = GradientCodec(exp, trainer.numel, trainer.model.flat.dtype, sizes.push,
                          worker=ctx.worker_index)
    outbox = codec.buffer()
    header = Header(codec.header(outbox))
    start, _ = resume_point(ctx, trainer, None)
    todo = next_step(exp, start, resumed_tail(exp, start))
    while todo is not None:
        step, tag = todo
        ctx.set_step(step)
        with ctx.recorder.span("compute"):  # Step 3: local gradient on this shard's batch.
            n, loss = trainer.gradient_into(codec.gradient_slot(outbox))
            codec.encode(outbox, step)  # compressed (if asked) with error feedback
            header.write(n, loss, tag)
        comm.send(outbox, 0, payload_bytes=codec.payload_bytes)  # Step 5: push the gradient.
        # Steps 8-9: pull the new model and its tail, go again.
        comm.recv(trainer.model.buffer, 0, payload_bytes=model_bytes)
        todo = next_step(exp, step, float(trainer.model.tail[0]))


class PSServer:
    """Rank 0 of every parameter-server mode, and what every such server does alike.

    It holds the model and its optimiser, an :class:`Inbox` with a buffer (and its
    :class:`Header`) per worker, the live workers, the samples trained on and the training
    loss since the last evaluation, and ``start``: the step the run starts (or resumes) at.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx, exp = ctx, ctx.exp
        sizes = MODES[exp.mode].header  # push: samples, loss, tag; pull: the tail
        self.trainer = Trainer(exp, worker_index=-1, extra=sizes.pull)
        self.model = self.trainer.model
        self.model_bytes = self.model.numel * self.model.flat.element_size()
        self.live = list(range(1, exp.workers + 1))  # workers not lost
        self.codec = GradientCodec(exp, self.model.numel, self.model.flat.dtype, sizes.push)
        self.buffers = {r: self.codec.buffer() for r in self.live}
        self.headers = {r: Header(self.codec.header(b)) for r, b in self.buffers.items()}
        self.decoded = {r: torch.empty_like(self.model.flat) for r in self.live}
        self.inbox = Inbox(ctx.comm, self.live, self.buffers,
                           payload_bytes=self.codec.payload_bytes)
        self.opt = self.trainer.optimizer()
        self.start, self.samples = resume_point(ctx, self.trainer, self.opt)
        self.loss = TrainLoss()

    def gradient(self, rank: int) -> torch.Tensor:
        """The gradient ``rank`` pushed: its buffer read in place, or decoded if compressed."""
        return self.codec.decode(self.buffers[rank], self.decoded[rank])

    def lose(self, rank: int, reason: str) -> None:
        """A worker is gone: go on without it, or fail the run."""
        self.ctx.worker_lost(rank, reason)  # raises unless on_worker_loss allows going on
        self.live.remove(rank)
        self.inbox.forget(rank)
        if not self.live:
            raise RuntimeError("every worker was lost")

    def reply(self, rank: int, tail: float, more: bool) -> None:
        """Answer ``rank`` with the model and ``tail``. ``more``: let its next message into
        the inbox; else nothing more is coming from it, so forget it."""
        if more:
            self.inbox.release(rank)
        else:
            self.inbox.forget(rank)
        self.model.tail[0] = tail
        try:
            self.ctx.comm.send(self.model.buffer, rank, payload_bytes=self.model_bytes)
        except RuntimeError:
            self.lose(rank, LOST_REPLY)

    def broadcast(self, ranks: list[int], tail: float) -> None:
        """Send the model and ``tail`` to every rank in ``ranks`` at once (sharing the
        server's link: on an emulated network all arrive after N·(α + M/B))."""
        self.model.tail[0] = tail
        handles = self.ctx.comm.isend_all(self.model.buffer, ranks, self.model_bytes)
        sends = list(zip(ranks, handles))
        for r in [r for r, handle in sends if not _delivered(handle)]:
            self.lose(r, LOST_REPLY)

    def end_of_step(self, step: int, **extra: Any) -> None:
        """Checkpoint, evaluate and report progress as due after ``step``."""
        end_of_step(self.ctx, self.trainer, self.opt, step, self.samples, self.loss, **extra)


def _delivered(handle: Handle) -> bool:
    """Wait for a send to finish; False if the receiver was gone."""
    try:
        handle.wait()
    except RuntimeError:
        return False
    return True
