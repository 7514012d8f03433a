"""Local SGD / FedAvg: workers train alone for H steps, then average their models.

Every worker keeps its own copy of the model and its own optimiser, takes ``local_steps``
= H optimiser steps on batches from its own shard, and then all workers replace their
models by the **sample-weighted** average of everyone's model (McMahan et al. 2017,
"Communication-efficient learning of deep networks from decentralized data", Algorithm 1,
with weights n_i / Σ n_i; Stich 2019, "Local SGD converges fast and communicates little").
n_i is the number of samples worker i used since the previous average. An equal-weight
average (the source article's rule for gradients; it never averages models) would over-weight
small shards; the kit weights by samples.

One all-reduce per average instead of one per step: the bytes fall H-fold. The price is
that local models drift apart between averages, most of all when shards are not IID.

How it is computed: all models are equal after an average (the anchor θ). Each worker
reduces n_i·(θ_i − θ) together with n_i and its summed batch losses in one buffer (the
header trick of :mod:`ddlkit.strategies.allreduce`), then sets θ ← θ + Σ n_i(θ_i − θ)/Σ n_i,
which is the weighted mean Σ n_i θ_i / Σ n_i. Averaging the small differences rather than
the models keeps rounding small, so with H=1 and plain SGD, where θ_i − θ = −η g_i, this
is the ``allreduce`` mode's step θ − η Σ n_i g_i / Σ n_i to about 1e-7.

Averages happen after steps H, 2H, ... and after the last step, so the final model is
an average. Evaluation rows (rank 0) always use an averaged model: an evaluation due at
step s (``eval_every``) is taken at the first average at or after s and recorded under
that average's step. ``allreduce_impl`` picks gloo's all-reduce or the hand-written ring.

Caveat: only parameters are averaged. Optimiser state (momentum's velocity, Adam's
moments) stays local to each worker, so with ``momentum`` or ``adam`` even H=1 is not
the ``allreduce`` mode; with ``sgd`` it is. Checkpoints are therefore allowed only with
``sgd`` and at averages (``checkpoint_every`` a multiple of H), see :mod:`ddlkit.config`.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ddlkit.comm import reducer
from ddlkit.modes import MODES
from ddlkit.strategies.common import (
    TrainLoss,
    end_of_step,
    evaluate,
    final_state,
    resume_point,
    should_eval,
)
from ddlkit.strategies.context import Context
from ddlkit.train.trainer import Trainer

#: samples since the last average, their summed batch loss (Σ n·loss)
HEADER = MODES["local-sgd"].header.push


def is_average_step(step: int, total: int, local_steps: int) -> bool:
    """Models are averaged after every ``local_steps``-th step and after the last one."""
    return step % local_steps == 0 or step == total


def average_rounds(steps: int, local_steps: int) -> int:
    """Averages (all-reduces) in a run of ``steps`` steps: ⌈steps / H⌉."""
    return -(-steps // local_steps)


def weighted_model_average(reduce: Callable[[torch.Tensor], None], model: torch.Tensor,
                           anchor: torch.Tensor, buf: torch.Tensor, samples: float,
                           loss_sum: float) -> tuple[float, float]:
    """Replace ``model`` (and ``anchor``) on every rank by Σ n_i θ_i / Σ n_i, in place.

    ``anchor`` is the previous average, ``samples`` = n_i and ``loss_sum`` = Σ n·loss of
    this worker since then; ``buf`` has room for the model plus :data:`HEADER`.
    ``reduce`` sums ``buf`` across ranks. Returns (Σ n_i, Σ over workers of loss_sum).
    """
    m = model.numel()
    torch.sub(model, anchor, out=buf[:m])
    buf[:m].mul_(samples)
    buf[m], buf[m + 1] = samples, loss_sum
    reduce(buf)
    total = float(buf[m])
    anchor.add_(buf[:m], alpha=1.0 / total)
    model.copy_(anchor)
    return total, float(buf[m + 1])


def run(ctx: Context) -> dict[str, Any]:
    exp, comm = ctx.exp, ctx.comm
    trainer = Trainer(exp, worker_index=ctx.worker_index)
    model = trainer.model.flat
    buf = torch.empty(trainer.numel + HEADER, dtype=model.dtype)
    grad = torch.zeros_like(model)
    opt = trainer.optimizer()
    reduce = reducer(comm, exp.allreduce_impl)
    start, samples = resume_point(ctx, trainer, opt)
    anchor = model.detach().clone()  # the last average: all ranks agree on it
    local_n, local_loss = 0.0, 0.0  # this worker, since the last average
    train_loss = TrainLoss()  # all workers, since the last evaluation
    eval_due = False
    if ctx.rank == 0:
        evaluate(ctx, trainer, start, samples, None)
    for step in range(start + 1, exp.steps + 1):
        ctx.set_step(step)
        with ctx.recorder.span("compute"):
            n, loss = trainer.gradient_into(grad)
            opt.step(grad)
        local_n += n
        local_loss += n * loss
        eval_due = eval_due or should_eval(step, exp.steps, exp.eval_every)
        if is_average_step(step, exp.steps, exp.local_steps):
            with torch.no_grad():
                total, losses = weighted_model_average(reduce, model, anchor, buf,
                                                       local_n, local_loss)
            local_n, local_loss = 0.0, 0.0
            samples += int(total)
            train_loss.add(losses, total)
            if ctx.rank == 0:
                end_of_step(ctx, trainer, opt, step, samples, train_loss,
                            eval_due=eval_due)
            eval_due = False
        elif ctx.rank == 0:
            ctx.reporter.progress(step, exp.steps, samples)
    return final_state(trainer) if ctx.rank == 0 else {}
