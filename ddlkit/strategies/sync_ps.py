"""Synchronous parameter server: the source article's 9-step loop, for real.

Rank 0 is the server (协调节点); ranks 1..N are workers (代理节点). Each step every
worker sends its mean gradient and sample count point-to-point; the server waits for
all of them, takes the sample-weighted average, applies the optimiser, and sends the
new parameters back to every worker. Per step the server receives N·M and sends N·M
elements; each worker sends M and receives M. With ``on_worker_loss="continue"`` a
lost worker is dropped and the others go on (the set of workers shrinks).

With ``compression`` (:mod:`ddlkit.comm.compression`) each worker pushes a compact,
fixed-size message instead (top-k values and indices, or QSGD levels and a norm), with
its own error-feedback memory for top-k; the server decodes every message and takes the
same sample-weighted average. Only the push is compressed: the server's broadcast of the
model (the pull) stays uncompressed, M elements per worker, so the workers all hold
exactly the server's parameters.
"""
from __future__ import annotations

from typing import Any

import torch

from ddlkit.comm import Communicator
from ddlkit.comm.compression import GradientCodec
from ddlkit.comm.inbox import Inbox, SenderLost
from ddlkit.context import Context
from ddlkit.strategies.common import (
    evaluate,
    final_state,
    maybe_checkpoint,
    resume_point,
    should_eval,
    weighted_mean_into,
)
from ddlkit.training import Trainer

HEADER = 2  # sample count, batch loss


def run(ctx: Context) -> dict[str, Any]:
    if ctx.role == "server":
        return _server(ctx)
    _worker(ctx)
    return {}


def _server(ctx: Context) -> dict[str, Any]:
    exp, comm = ctx.exp, ctx.comm
    trainer = Trainer(exp, worker_index=-1)
    m = trainer.numel
    live = list(range(1, exp.workers + 1))
    codec = GradientCodec(exp, m, trainer.model.flat.dtype, HEADER)
    buffers = {r: codec.buffer() for r in live}
    decoded = {r: torch.empty_like(trainer.model.flat) for r in live}
    inbox = Inbox(comm, live, buffers, payload_bytes=codec.payload_bytes)
    grad = torch.zeros_like(trainer.model.flat)
    opt = trainer.optimizer()
    start, samples = resume_point(ctx, trainer, opt)
    loss_sum = 0.0  # Σ n·loss since the last evaluation, for the mean training loss
    loss_n = 0.0
    evaluate(ctx, trainer, start, samples, None)
    for step in range(start + 1, exp.steps + 1):
        ctx.set_step(step)
        # Steps 5-6: wait for a gradient from every live worker (in any order).
        arrived: set[int] = set()
        while not set(live) <= arrived:
            try:
                arrived.add(inbox.take())
            except SenderLost as lost:
                live.remove(lost.sender)
                ctx.worker_lost(lost.sender, str(lost))
        if not live and not arrived:
            raise RuntimeError("every worker was lost")
        with ctx.recorder.span("compute"):
            ranks = sorted(arrived)  # rank order: the sum is bitwise reproducible
            counts = [float(codec.header(buffers[r])[0]) for r in ranks]
            grads = [codec.decode(buffers[r], decoded[r]) for r in ranks]
            total = weighted_mean_into(grad, grads, counts)
            loss_sum += sum(float(codec.header(buffers[r])[1]) * n
                            for r, n in zip(ranks, counts))
            loss_n += total
            opt.step(grad)  # Step 7: update the global model.
        if step < exp.steps:  # after the last step nothing more is coming
            for r in ranks:
                inbox.release(r)
        samples += int(total)
        # Step 8: send the new parameters to every worker.
        for r in _broadcast(comm, trainer.model.flat, live):
            live.remove(r)
            inbox.forget(r)
            ctx.worker_lost(r, "its connection closed while receiving the model")
        maybe_checkpoint(ctx, trainer, opt, step, samples)
        if should_eval(step, exp.steps, exp.eval_every):
            evaluate(ctx, trainer, step, samples, loss_sum / loss_n)
            loss_sum, loss_n = 0.0, 0.0
        ctx.reporter.progress(step, exp.steps, samples)
    inbox.close()
    return final_state(trainer)


def _broadcast(comm: Communicator, params: torch.Tensor, ranks: list[int]) -> list[int]:
    """Send ``params`` to every rank in ``ranks`` at once; return the ranks that were gone."""
    sends = [(r, comm.isend(params, r)) for r in ranks]
    gone = []
    for r, handle in sends:
        try:
            handle.wait()
        except RuntimeError:
            gone.append(r)
    return gone


def _worker(ctx: Context) -> None:
    exp, comm = ctx.exp, ctx.comm
    trainer = Trainer(exp, worker_index=ctx.worker_index)
    codec = GradientCodec(exp, trainer.numel, trainer.model.flat.dtype, HEADER,
                          worker=ctx.worker_index)
    outbox = codec.buffer()
    header = codec.header(outbox)
    start, _ = resume_point(ctx, trainer, None)
    for step in range(start + 1, exp.steps + 1):
        ctx.set_step(step)
        with ctx.recorder.span("compute"):  # Step 3: local gradient on this shard's batch.
            n, loss = trainer.gradient_into(codec.gradient_slot(outbox))
            codec.encode(outbox, step)  # compressed (if asked) with error feedback
            header[0], header[1] = n, loss
        comm.send(outbox, 0, payload_bytes=codec.payload_bytes)  # Step 5: push the gradient.
        comm.recv(trainer.model.flat, 0)  # Step 8-9: pull the new model, go again.
