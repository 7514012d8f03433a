"""Synchronous parameter server: the source article's 9-step loop, for real.

Rank 0 is the server (协调节点); ranks 1..N are workers (代理节点). Each step every
worker sends its mean gradient and sample count point-to-point; the server waits for
all of them, takes the sample-weighted average, applies the optimiser, and sends the
new parameters back to every worker. Per step the server receives N·M and sends N·M
elements; each worker sends M and receives M. With ``on_worker_loss="continue"`` a
lost worker is dropped and the others go on (the set of workers shrinks).

With ``compression`` (:mod:`ddlkit.comm.compress.codec`) each worker pushes a compact,
fixed-size message instead (top-k values and indices, or QSGD levels and a norm), with
its own error-feedback memory for top-k; the server decodes every message and takes the
same sample-weighted average. Only the push is compressed: the server's broadcast of the
model (the pull) stays uncompressed, M elements per worker, so the workers all hold
exactly the server's parameters.

Backup workers (Chen et al. 2016, "Revisiting distributed synchronous SGD",
arXiv:1604.00981, §3): with ``backup_workers`` b the server steps as soon as the first
N−b gradients *for the current step* have arrived, and averages only those. A gradient
that arrives later was computed on an older model: the server drops it on arrival and
answers its sender at once with the current model, so the late worker skips ahead to the
current step instead of falling further behind. Every message a worker sends gets exactly
one reply (the model, plus the step to compute next; a step past ``steps`` means stop),
so gloo's sends and receives always pair up. b=0 is plain sync SGD, message for message.
The result records, per step, which workers' gradients were applied and which dropped.
"""
from __future__ import annotations

from typing import Any

import torch

from ddlkit.comm import Communicator
from ddlkit.comm.compress.codec import GradientCodec
from ddlkit.comm.inbox import Inbox, SenderLost
from ddlkit.strategies.common import (
    evaluate,
    final_state,
    maybe_checkpoint,
    resume_point,
    should_eval,
    weighted_mean_into,
)
from ddlkit.strategies.context import Context
from ddlkit.train.models import FlatModel
from ddlkit.train.trainer import Trainer

HEADER = 3  # sample count, batch loss, the step the gradient is for
PULL_HEADER = 1  # on each reply: the step the worker computes next (past ``steps``: stop)


def run(ctx: Context) -> dict[str, Any]:
    if ctx.role == "server":
        return _server(ctx)
    _worker(ctx)
    return {}


def _server(ctx: Context) -> dict[str, Any]:
    exp, comm = ctx.exp, ctx.comm
    trainer = Trainer(exp, worker_index=-1, extra=PULL_HEADER)
    model = trainer.model
    m = trainer.numel
    itemsize = model.flat.element_size()
    live = list(range(1, exp.workers + 1))
    codec = GradientCodec(exp, m, model.flat.dtype, HEADER)
    buffers = {r: codec.buffer() for r in live}
    decoded = {r: torch.empty_like(model.flat) for r in live}
    inbox = Inbox(comm, live, buffers, payload_bytes=codec.payload_bytes)
    grad = torch.zeros_like(model.flat)
    opt = trainer.optimizer()
    start, samples = resume_point(ctx, trainer, opt)
    applied: list[list[int]] = []  # per step: the ranks whose gradients were averaged
    dropped: list[list[int]] = [[] for _ in range(start, exp.steps)]  # per step: late ones
    loss_sum = 0.0  # Σ n·loss since the last evaluation, for the mean training loss
    loss_n = 0.0
    ranks: list[int] = []
    evaluate(ctx, trainer, start, samples, None)
    for step in range(start + 1, exp.steps + 1):
        ctx.set_step(step)
        # Steps 5-6: wait for this step's gradients, the first N−b to arrive (b=0: all).
        ranks = []
        while len(ranks) < max(1, len(live) - exp.backup_workers) and set(live) - set(ranks):
            try:
                r = inbox.take()  # whichever worker's gradient arrived first
            except SenderLost as lost:
                _lose(ctx, live, lost)
                continue
            for_step = int(codec.header(buffers[r])[2])
            if for_step == step:
                ranks.append(r)
            else:  # late: computed on an older model
                dropped[for_step - start - 1].append(r)
                _answer(ctx, inbox, model, live, r, step, release=True)
        with ctx.recorder.span("compute"):
            ranks.sort()  # rank order: the sum is bitwise reproducible
            counts = [float(codec.header(buffers[r])[0]) for r in ranks]
            grads = [codec.decode(buffers[r], decoded[r]) for r in ranks]
            total = weighted_mean_into(grad, grads, counts)
            loss_sum += sum(float(codec.header(buffers[r])[1]) * n
                            for r, n in zip(ranks, counts))
            loss_n += total
            opt.step(grad)  # Step 7: update the global model.
        applied.append(ranks)
        if step < exp.steps:  # after the last step nothing more is coming from these
            for r in ranks:
                inbox.release(r)
        samples += int(total)
        # Step 8: send the new parameters, and the step to compute next, to the workers
        # whose gradients were used; a late worker gets them when its gradient arrives.
        model.tail[0] = step + 1
        for r in _broadcast(comm, model.buffer, [r for r in ranks if r in live], m * itemsize):
            live.remove(r)
            inbox.forget(r)
            ctx.worker_lost(r, "its connection closed while receiving the model")
        maybe_checkpoint(ctx, trainer, opt, step, samples)
        if should_eval(step, exp.steps, exp.eval_every):
            evaluate(ctx, trainer, step, samples, loss_sum / loss_n)
            loss_sum, loss_n = 0.0, 0.0
        ctx.reporter.progress(step, exp.steps, samples)
    # Every worker not answered at the last step still owes one (late) gradient: drop
    # it, and answer with the stop (a next step past ``steps``).
    owed = set(live) - set(ranks)
    while owed & set(live):
        try:
            r = inbox.take()
        except SenderLost as lost:
            _lose(ctx, live, lost)
            continue
        owed.discard(r)
        dropped[int(codec.header(buffers[r])[2]) - start - 1].append(r)
        _answer(ctx, inbox, model, live, r, exp.steps + 1, release=False)
    inbox.close()
    out = final_state(trainer)
    out["applied"], out["dropped"] = applied, dropped
    return out


def _lose(ctx: Context, live: list[int], lost: SenderLost) -> None:
    """A worker's connection closed: go on without it (if the experiment allows)."""
    live.remove(lost.sender)
    ctx.worker_lost(lost.sender, str(lost))
    if not live:
        raise RuntimeError("every worker was lost")


def _answer(ctx: Context, inbox: Inbox, model: FlatModel, live: list[int], rank: int,
            step: int, release: bool) -> None:
    """Answer a dropped late gradient at once: the current model and ``step`` to do next.

    ``release`` lets the rank's next gradient into its (already read) inbox buffer; after
    the last step nothing more is coming, so the server forgets the rank instead.
    """
    if release:
        inbox.release(rank)
    else:
        inbox.forget(rank)
    model.tail[0] = step
    try:
        ctx.comm.send(model.buffer, rank, payload_bytes=model.numel * model.flat.element_size())
    except RuntimeError:
        live.remove(rank)
        inbox.forget(rank)
        ctx.worker_lost(rank, "its connection closed while receiving the model")


def _broadcast(comm: Communicator, params: torch.Tensor, ranks: list[int],
               payload_bytes: int | None = None) -> list[int]:
    """Send ``params`` to every rank in ``ranks`` at once; return the ranks that were gone."""
    sends = [(r, comm.isend(params, r, payload_bytes)) for r in ranks]
    gone = []
    for r, handle in sends:
        try:
            handle.wait()
        except RuntimeError:
            gone.append(r)
    return gone


def _worker(ctx: Context) -> None:
    exp, comm = ctx.exp, ctx.comm
    trainer = Trainer(exp, worker_index=ctx.worker_index, extra=PULL_HEADER)
    m = trainer.numel
    itemsize = trainer.model.flat.element_size()
    codec = GradientCodec(exp, m, trainer.model.flat.dtype, HEADER, worker=ctx.worker_index)
    outbox = codec.buffer()
    header = codec.header(outbox)
    start, _ = resume_point(ctx, trainer, None)
    step = start + 1
    while step <= exp.steps:
        ctx.set_step(step)
        with ctx.recorder.span("compute"):  # Step 3: local gradient on this shard's batch.
            n, loss = trainer.gradient_into(codec.gradient_slot(outbox))
            codec.encode(outbox, step)  # compressed (if asked) with error feedback
            header[0], header[1], header[2] = n, loss, step
        comm.send(outbox, 0, payload_bytes=codec.payload_bytes)  # Step 5: push the gradient.
        # Steps 8-9: pull the new model and the step to compute next (with backup
        # workers a late worker skips ahead to the server's step), go again.
        comm.recv(trainer.model.buffer, 0, payload_bytes=m * itemsize)
        step = int(trainer.model.tail[0])
