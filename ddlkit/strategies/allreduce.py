"""Decentralised data parallelism: every worker averages gradients with an all-reduce.

There is no server. Each worker contributes n_i·g_i together with n_i and n_i·loss_i in
one buffer, so after the sum every worker holds the sample-weighted mean gradient and
applies the same optimiser step to its own copy of the model. ``allreduce_impl``
chooses gloo's built-in all-reduce or the hand-written ring in :mod:`ddlkit.comm.ring`.
"""
from __future__ import annotations

from typing import Any

import torch

from ddlkit.comm.ring import ring_all_reduce
from ddlkit.context import Context
from ddlkit.strategies.common import (
    evaluate,
    final_state,
    maybe_checkpoint,
    resume_point,
    should_eval,
)
from ddlkit.training import Trainer

HEADER = 2  # sample count, sample count × batch loss


def run(ctx: Context) -> dict[str, Any]:
    exp, comm = ctx.exp, ctx.comm
    trainer = Trainer(exp, worker_index=ctx.worker_index)
    model = trainer.model
    m = trainer.numel
    buf = torch.empty(m + HEADER, dtype=model.flat.dtype)
    grad = torch.zeros_like(model.flat)
    opt = trainer.optimizer()
    reduce = comm.all_reduce if exp.allreduce_impl == "gloo" else (
        lambda t: ring_all_reduce(comm, t))
    start, samples = resume_point(ctx, trainer, opt)
    loss_sum, loss_n = 0.0, 0.0  # since the last evaluation, for the mean training loss
    if ctx.rank == 0:
        evaluate(ctx, trainer, start, samples, None)
    for step in range(start + 1, exp.steps + 1):
        ctx.set_step(step)
        with ctx.recorder.span("compute"):
            n, loss = trainer.gradient_into(buf[:m])
            buf[:m].mul_(n)
            buf[m], buf[m + 1] = n, n * loss
        reduce(buf)
        with ctx.recorder.span("compute"):
            total = float(buf[m])
            torch.div(buf[:m], total, out=grad)
            opt.step(grad)
        samples += int(total)
        loss_sum += float(buf[m + 1])
        loss_n += total
        if ctx.rank == 0:
            maybe_checkpoint(ctx, trainer, opt, step, samples)
            if should_eval(step, exp.steps, exp.eval_every):
                evaluate(ctx, trainer, step, samples, loss_sum / loss_n)
                loss_sum, loss_n = 0.0, 0.0
            ctx.reporter.progress(step, exp.steps, samples)
    return final_state(trainer) if ctx.rank == 0 else {}
