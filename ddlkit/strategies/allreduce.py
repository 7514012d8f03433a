"""Decentralised data parallelism: every worker averages gradients with an all-reduce.

There is no server. Each worker contributes n_i·g_i together with n_i and n_i·loss_i in
one buffer, so after the sum every worker holds the sample-weighted mean gradient and
applies the same optimiser step to its own copy of the model. ``allreduce_impl``
chooses gloo's built-in all-reduce or the hand-written ring in :mod:`ddlkit.comm.ring`.

**Compressed gradients cannot simply be all-reduced.** An all-reduce adds the workers'
buffers entry by entry, so entry j of every buffer must mean the same thing. With top-k
it does not: each worker keeps the k entries that are largest *on its own gradient*, so
the workers' index arrays differ, and adding (values, indices) pairs position by position
adds values of different parameters and sums indices into meaningless numbers.
Densifying each sparse gradient first (zeros elsewhere) makes it summable again, but then
the all-reduce moves the full M entries and nothing was saved. QSGD is no better: each
worker's levels are in units of its own norm ‖g_i‖, so levels of different workers
cannot be added either. So with ``compression`` every worker *all-gathers* the others'
compact messages, (N−1)·P bytes in and out per step for P-byte messages, decodes each,
and takes the sample-weighted average itself. Every worker decodes the same messages in
rank order, so all copies of the model stay bitwise identical. An all-gather's cost grows
with N while a ring all-reduce's stays flat: compression pays only while
(N−1)·P < 2(N−1)/N·M·s, that is while a message is under 2/N of the dense gradient.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ddlkit.comm import reducer
from ddlkit.comm.compress.codec import GradientCodec
from ddlkit.modes import MODES
from ddlkit.strategies.common import (
    TrainLoss,
    end_of_step,
    evaluate,
    final_state,
    resume_point,
    weighted_mean_into,
)
from ddlkit.strategies.context import Context
from ddlkit.train.optim import FlatOptimizer
from ddlkit.train.trainer import Trainer

#: sample count, sample count × batch loss (compressed: sample count, batch loss)
HEADER = MODES["allreduce"].header.push


#: one step's exchange: gradient, communication, averaged update; returns (Σ n_i, Σ n_i·loss_i)
Exchange = Callable[[int], tuple[float, float]]


def run(ctx: Context) -> dict[str, Any]:
    exp = ctx.exp
    trainer = Trainer(exp, worker_index=ctx.worker_index)
    opt = trainer.optimizer()
    exchange = (_dense_exchange if exp.compression == "none" else _compressed_exchange)(
        ctx, trainer, opt)
    start, samples = resume_point(ctx, trainer, opt)
    train_loss = TrainLoss()
    if ctx.rank == 0:
        evaluate(ctx, trainer, start, samples, None)
    for step in range(start + 1, exp.steps + 1):
        ctx.set_step(step)
        total, weighted_loss = exchange(step)
        samples += int(total)
        train_loss.add(weighted_loss, total)
        if ctx.rank == 0:
            end_of_step(ctx, trainer, opt, step, samples, train_loss)
    return final_state(trainer) if ctx.rank == 0 else {}


def _dense_exchange(ctx: Context, trainer: Trainer, opt: FlatOptimizer) -> Exchange:
    """All-reduce one buffer: n_i·g_i, n_i and n_i·loss_i summed over the workers."""
    comm, m = ctx.comm, trainer.numel
    buf = torch.empty(m + HEADER, dtype=trainer.model.flat.dtype)
    grad = torch.zeros_like(trainer.model.flat)
    reduce = reducer(comm, ctx.exp.allreduce_impl)

    def exchange(step: int) -> tuple[float, float]:
        with ctx.recorder.span("compute"):
            n, loss = trainer.gradient_into(buf[:m])
            buf[:m].mul_(n)
            buf[m], buf[m + 1] = n, n * loss
        reduce(buf)
        with ctx.recorder.span("compute"):
            total = float(buf[m])
            torch.div(buf[:m], total, out=grad)
            opt.step(grad)
        return total, float(buf[m + 1])

    return exchange


def _compressed_exchange(ctx: Context, trainer: Trainer, opt: FlatOptimizer) -> Exchange:
    """All-gather every worker's compressed message, decode each, take the weighted mean."""
    comm, flat = ctx.comm, trainer.model.flat
    codec = GradientCodec(ctx.exp, trainer.numel, flat.dtype, HEADER, worker=ctx.worker_index)
    mine = codec.buffer()
    header = codec.header(mine)
    gathered = [codec.buffer() for _ in range(comm.world_size)]
    decoded = [torch.empty_like(flat) for _ in range(comm.world_size)]
    grad = torch.zeros_like(flat)

    def exchange(step: int) -> tuple[float, float]:
        with ctx.recorder.span("compute"):
            n, loss = trainer.gradient_into(codec.gradient_slot(mine))
            codec.encode(mine, step)  # with this worker's own error-feedback memory
            header[0], header[1] = n, loss
        comm.all_gather(gathered, mine, payload_bytes=codec.payload_bytes)
        with ctx.recorder.span("compute"):
            counts = [float(codec.header(b)[0]) for b in gathered]
            grads = [codec.decode(b, d) for b, d in zip(gathered, decoded)]
            total = weighted_mean_into(grad, grads, counts)  # rank order on every worker
            opt.step(grad)
        return total, sum(float(codec.header(b)[1]) * c for b, c in zip(gathered, counts))

    return exchange
