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

from ddlkit.comm.inbox import SenderLost
from ddlkit.config import Experiment
from ddlkit.modes import MODES
from ddlkit.strategies import ps
from ddlkit.strategies.common import evaluate, final_state, weighted_mean_into
from ddlkit.strategies.context import Context

#: with each gradient: sample count, batch loss, the step it is for; with each reply: the
#: step to compute next (past ``steps``: stop)
HEADER, PULL_HEADER = MODES["sync"].header.push, MODES["sync"].header.pull


def run(ctx: Context) -> dict[str, Any]:
    if ctx.role == "server":
        return _server(ctx)
    _worker(ctx)
    return {}


def _server(ctx: Context) -> dict[str, Any]:
    exp = ctx.exp
    server = ps.PSServer(ctx)  # Step 1: the model, its optimiser, a buffer per worker
    live, inbox, headers = server.live, server.inbox, server.headers
    grad = torch.zeros_like(server.model.flat)
    start = server.start
    applied: list[list[int]] = []  # per step: the ranks whose gradients were averaged
    dropped: list[list[int]] = [[] for _ in range(start, exp.steps)]  # per step: late ones
    ranks: list[int] = []
    evaluate(ctx, server.trainer, start, server.samples, None)
    for step in range(start + 1, exp.steps + 1):
        ctx.set_step(step)
        # Steps 5-6: wait for this step's gradients, the first N−b to arrive (b=0: all).
        ranks = []
        while len(ranks) < max(1, len(live) - exp.backup_workers) and set(live) - set(ranks):
            try:
                r = inbox.take()  # whichever worker's gradient arrived first
            except SenderLost as lost:
                server.lose(lost.sender, str(lost))
                continue
            if headers[r].step == step:
                ranks.append(r)
            else:  # late: computed on an older model; answered at once, to do this step
                dropped[headers[r].step - start - 1].append(r)
                server.reply(r, step, more=True)
        with ctx.recorder.span("compute"):
            ranks.sort()  # rank order: the sum is bitwise reproducible
            counts = [headers[r].samples for r in ranks]
            grads = [server.gradient(r) for r in ranks]  # decoded, if compressed
            total = weighted_mean_into(grad, grads, counts)
            server.loss.add(sum(headers[r].loss * n for r, n in zip(ranks, counts)), total)
            server.opt.step(grad)  # Step 7: update the global model.
        applied.append(ranks)
        if step < exp.steps:  # after the last step nothing more is coming from these
            for r in ranks:
                inbox.release(r)
        server.samples += int(total)
        # Step 8: send the new parameters, and the step to compute next, to the workers
        # whose gradients were used; a late worker gets them when its gradient arrives.
        server.broadcast([r for r in ranks if r in live], step + 1)
        server.end_of_step(step)
    # Every worker not answered at the last step still owes one (late) gradient: drop
    # it, and answer with the stop (a next step past ``steps``).
    owed = set(live) - set(ranks)
    while owed & set(live):
        try:
            r = inbox.take()
        except SenderLost as lost:
            server.lose(lost.sender, str(lost))
            continue
        owed.discard(r)
        dropped[headers[r].step - start - 1].append(r)
        server.reply(r, exp.steps + 1, more=False)
    inbox.close()
    out = final_state(server.trainer)
    out["applied"], out["dropped"] = applied, dropped
    return out


def _worker(ctx: Context) -> None:
    """Push the gradient for a step (tagged with it); the reply names the step to do next."""
    ps.work(ctx, _resumed_step, _next_step)


def _resumed_step(exp: Experiment, step: int) -> float:
    """What the last reply before a resume at ``step`` said: compute ``step + 1``."""
    return step + 1


def _next_step(exp: Experiment, step: int, tail: float) -> tuple[int, int] | None:
    """The reply's tail is the step to compute next (with backup workers a late worker
    skips ahead to the server's step), which is also the gradient's tag; past ``steps``:
    stop."""
    todo = int(tail)
    return (todo, todo) if todo <= exp.steps else None
