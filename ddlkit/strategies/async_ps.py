"""Asynchronous parameter server (Dean et al. 2012, "Downpour SGD").

The server applies each gradient the moment it arrives, from whichever worker sent it,
and answers that worker alone with the current parameters and their version. Nobody
waits for a straggler, but a gradient may have been computed on parameters that are
already ``staleness`` updates old: staleness = version now − version the worker pulled.

The server applies ``steps × workers`` updates in total (as many gradients as ``sync``
uses), then answers every worker's last message with a stop signal.
"""
from __future__ import annotations

from typing import Any

import torch

from ddlkit.context import Context
from ddlkit.strategies.common import evaluate, final_state, should_eval

HEADER = 3  # sample count, batch loss, version the gradient was computed on
STOP = -1.0


def run(ctx: Context) -> dict[str, Any]:
    if ctx.role == "server":
        return _server(ctx)
    _worker(ctx)
    return {}


def _server(ctx: Context) -> dict[str, Any]:
    from ddlkit.training import Trainer

    exp, comm = ctx.exp, ctx.comm
    trainer = Trainer(exp, worker_index=-1, extra=1)  # reply = parameters + version
    model = trainer.model
    m = trainer.numel
    itemsize = model.flat.element_size()
    inbox = torch.empty(m + HEADER, dtype=model.flat.dtype)
    opt = trainer.optimizer()
    budget = exp.steps * exp.workers
    version, samples, active = 0, 0, exp.workers
    staleness: list[int] = []
    loss_sum, loss_n = 0.0, 0.0
    evaluate(ctx, trainer, 0, 0, None, updates=0)
    while active:
        sender = comm.recv(inbox, None, payload_bytes=m * itemsize)  # from any worker
        if version < budget:
            with ctx.recorder.span("compute"):
                n = float(inbox[m])
                staleness.append(version - int(inbox[m + 2]))
                opt.step(inbox[:m])
                version += 1
                samples += int(n)
                loss_sum += float(inbox[m + 1]) * n
                loss_n += n
            ctx.set_step(version)
        done = version >= budget
        model.tail[0] = STOP if done else version
        comm.send(model.buffer, sender, payload_bytes=m * itemsize)
        if done:
            active -= 1
        if version % exp.workers == 0 and loss_n:
            rnd = version // exp.workers
            if should_eval(rnd, exp.steps, exp.eval_every):
                evaluate(ctx, trainer, rnd, samples, loss_sum / loss_n, updates=version)
                loss_sum, loss_n = 0.0, 0.0
            ctx.reporter.progress(rnd, exp.steps, samples)
    out = final_state(trainer)
    out["staleness"] = staleness
    return out


def _worker(ctx: Context) -> None:
    from ddlkit.training import Trainer

    exp, comm = ctx.exp, ctx.comm
    trainer = Trainer(exp, worker_index=ctx.worker_index, extra=1)
    model = trainer.model
    m = trainer.numel
    itemsize = model.flat.element_size()
    outbox = torch.empty(m + HEADER, dtype=model.flat.dtype)
    pulled, step = 0, 0
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
