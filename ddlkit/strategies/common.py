"""Pieces every strategy shares: evaluation rows, the end of a step on the rank that holds
the model, checkpoints and resuming, and the sample-weighted average."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from ddlkit.strategies.context import Context
from ddlkit.train import checkpoint
from ddlkit.train.optim import FlatOptimizer
from ddlkit.train.trainer import Trainer


def should_eval(step: int, total: int, every: int) -> bool:
    """Evaluate at step 0, every ``every`` steps, and after the last step."""
    return step == 0 or step == total or step % every == 0


def evaluate(ctx: Context, trainer: Trainer, step: int, samples: int,
             train_loss: float | None, **extra: Any) -> None:
    """Evaluate on the test set and send a history row to the parent.

    ``train_loss`` is the sample-weighted mean batch loss over the steps since the
    previous evaluation, in every mode.
    """
    with ctx.recorder.span("eval"):
        metrics = trainer.metrics()  # test_loss, accuracy (and bits_per_char for text)
    row = {"step": step, "samples": samples, "t": time.perf_counter(),
           "train_loss": train_loss, **metrics, **extra}
    ctx.reporter.eval_row(row)


@dataclass
class TrainLoss:
    """Σ n·loss and Σ n over the batches since the last evaluation, for the mean training
    loss an evaluation row reports (sample-weighted, in every mode)."""

    weighted_sum: float = 0.0
    count: float = 0.0

    def add(self, weighted_sum: float, count: float) -> None:
        """Count batches of ``count`` samples in all whose losses sum to ``weighted_sum``."""
        self.weighted_sum += weighted_sum
        self.count += count

    def take_mean(self) -> float:
        """The mean loss since the last call, and start counting again."""
        mean = self.weighted_sum / self.count
        self.weighted_sum, self.count = 0.0, 0.0
        return mean


def end_of_step(ctx: Context, trainer: Trainer, opt: FlatOptimizer, step: int, samples: int,
                loss: TrainLoss, eval_due: bool | None = None, **extra: Any) -> None:
    """After ``step``, on the rank holding the model: checkpoint if due, evaluate if due
    (with the mean training loss since the last evaluation, and ``extra`` in the row), and
    report progress. ``eval_due`` None means :func:`should_eval`."""
    exp = ctx.exp
    maybe_checkpoint(ctx, trainer, opt, step, samples)
    if should_eval(step, exp.steps, exp.eval_every) if eval_due is None else eval_due:
        evaluate(ctx, trainer, step, samples, loss.take_mean(), **extra)
    ctx.reporter.progress(step, exp.steps, samples)


def weighted_mean_into(out: torch.Tensor, grads: list[torch.Tensor],
                       counts: list[float]) -> float:
    """``out = Σ n_i g_i / Σ n_i``: the mean gradient over the union of all batches.

    The source article averages worker gradients with equal weights, 1/N Σ g_i, which
    is biased whenever workers hold different numbers of samples. Weighting each mean
    gradient by its sample count gives exactly the large-batch gradient. Sums run in
    rank order so the result is bitwise reproducible. Returns Σ n_i.
    """
    total = float(sum(counts))
    out.zero_()
    for g, n in zip(grads, counts):
        out.add_(g, alpha=n)
    out.div_(total)
    return total


def resume_point(ctx: Context, trainer: Trainer, opt: FlatOptimizer | None) -> tuple[int, int]:
    """Where this rank starts: (step, samples) — (0, 0), or the checkpoint's.

    Resuming loads the saved parameters (and the optimiser's state, where this rank has
    an optimiser) and moves the rank's batch sampler past the batches already used, so
    the run continues exactly where the checkpoint was taken.
    """
    if ctx.resume is None:
        return 0, 0
    state = ctx.resume
    with torch.no_grad():
        trainer.model.flat.copy_(state["params"])
    if opt is not None:
        opt.load_state_dict(state["optimizer"])
    step = int(state["step"])
    if trainer.sampler is not None:
        for _ in range(step):
            trainer.sampler.next_batch()
    return step, int(state["samples"])


def maybe_checkpoint(ctx: Context, trainer: Trainer, opt: FlatOptimizer, step: int,
                     samples: int) -> None:
    """Save a checkpoint after ``step`` if one is due (every ``checkpoint_every`` steps)."""
    every = ctx.exp.checkpoint_every
    if ctx.checkpoint_dir is None or every <= 0 or step % every:
        return
    with ctx.recorder.span("eval"):
        checkpoint.save(ctx.checkpoint_dir, {
            "step": step, "samples": samples, "config": ctx.exp.to_dict(),
            "params": trainer.model.flat.detach().clone(), "optimizer": opt.state_dict()})


def final_state(trainer: Trainer) -> dict[str, Any]:
    """What the rank holding the model reports at the end: the final parameters."""
    return {"final_params": trainer.model.flat.detach().clone().numpy()}
