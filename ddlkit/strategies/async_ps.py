"""Asynchronous parameter server (Dean et al. 2012, "Downpour SGD").

The server applies each gradient the moment it arrives, from whichever worker sent it,
and answers that worker alone with the current parameters and their version. Nobody
waits for a straggler, but a gradient may have been computed on parameters that are
already ``staleness`` updates old: staleness = version now − version the worker pulled.

The server applies ``steps × workers`` updates in total (as many gradients as ``sync``
uses), then answers every worker's last message with a stop signal. A lost worker is
dropped and the others carry on (unless ``on_worker_loss="fail"``).
"""
from __future__ import annotations

from typing import Any

import torch

from ddlkit.comm.inbox import Inbox, SenderLost
from ddlkit.strategies.common import (
    evaluate,
    final_state,
    maybe_checkpoint,
    resume_point,
    should_eval,
)
from ddlkit.strategies.context import Context

HEADER = 3  # sample count, batch loss, version the gradient was computed on
STOP = -1.0


def run(ctx: Context) -> dict[str, Any]:
    if ctx.role == "server":
        return _server(ctx)
    worker(ctx)
    return {}


def _server(ctx: Context) -> dict[str, Any]:
    from ddlkit.train.trainer import Trainer

    exp, comm = ctx.exp, ctx.comm
    trainer = Trainer(exp, worker_index=-1, extra=1)  # reply = parameters + version
    model = trainer.model
    m = trainer.numel
    itemsize = model.flat.element_size()
    active = list(range(1, exp.workers + 1))
    buffers = {r: torch.empty(m + HEADER, dtype=model.flat.dtype) for r in active}
    inbox = Inbox(comm, active, buffers, payload_bytes=m * itemsize)
    opt = trainer.optimizer()
    budget = exp.steps * exp.workers
    rnd, samples = resume_point(ctx, trainer, opt)
    version = rnd * exp.workers
    staleness: list[int] = []
    loss_sum, loss_n = 0.0, 0.0
    evaluate(ctx, trainer, rnd, samples, None, updates=version)
    while active:
        try:
            sender = inbox.take()  # whichever worker's gradient arrived first
        except SenderLost as lost:
            active.remove(lost.sender)
            ctx.worker_lost(lost.sender, str(lost))
            continue
        msg = buffers[sender]
        if version < budget:
            with ctx.recorder.span("compute"):
                n = float(msg[m])
                staleness.append(version - int(msg[m + 2]))
                opt.step(msg[:m])
                version += 1
                samples += int(n)
                loss_sum += float(msg[m + 1]) * n
                loss_n += n
        done = version >= budget
        if done:  # this worker gets its stop signal: expect nothing more from it
            inbox.forget(sender)
        else:
            inbox.release(sender)
        model.tail[0] = STOP if done else version
        try:
            comm.send(model.buffer, sender, payload_bytes=m * itemsize)
        except RuntimeError:
            active.remove(sender)
            inbox.forget(sender)
            ctx.worker_lost(sender, "its connection closed while receiving the model")
            continue
        if done:
            active.remove(sender)
        if version // exp.workers > rnd and loss_n:
            rnd = version // exp.workers
            ctx.set_step(rnd)
            maybe_checkpoint(ctx, trainer, opt, rnd, samples)
            if should_eval(rnd, exp.steps, exp.eval_every):
                evaluate(ctx, trainer, rnd, samples, loss_sum / loss_n, updates=version)
                loss_sum, loss_n = 0.0, 0.0
            ctx.reporter.progress(rnd, exp.steps, samples)
    inbox.close()
    out = final_state(trainer)
    out["staleness"] = staleness
    return out


def worker(ctx: Context) -> None:
    """A worker's loop: push a gradient tagged with the version it was computed on, pull
    the model and its version, until a reply says stop (shared with ``ssp``)."""
    from ddlkit.train.trainer import Trainer

    exp, comm = ctx.exp, ctx.comm
    trainer = Trainer(exp, worker_index=ctx.worker_index, extra=1)
    model = trainer.model
    m = trainer.numel
    itemsize = model.flat.element_size()
    outbox = torch.empty(m + HEADER, dtype=model.flat.dtype)
    step, _ = resume_point(ctx, trainer, None)
    pulled = step * exp.workers
    while True:
        step += 1
        ctx.set_step(step)
        with ctx.recorder.span("compute"):
            n, loss = trainer.gradient_into(outbox[:m])
            outbox[m], outbox[m + 1], outbox[m + 2] = n, loss, pulled
        comm.send(outbox, 0, payload_bytes=m * itemsize)
        comm.recv(model.buffer, 0, payload_bytes=m * itemsize)
        if float(model.tail[0]) == STOP:
            return
        pulled = int(model.tail[0])
