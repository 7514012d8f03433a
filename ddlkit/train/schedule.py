"""The linear learning-rate scaling rule with gradual warm-up (Goyal et al. 2017).

Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour" (arXiv:1706.02677),
§2.1–2.2: when the minibatch grows k-fold, multiply the learning rate by k. With k workers
each drawing b samples, one synchronous step with learning rate k·η moves the model about
as far as k small steps of η would (their eq. 3–4: the approximation holds when the
gradient changes little over those k steps). Early in training it changes fast, so the
full k·η can diverge; *gradual warm-up* starts at η and raises the rate linearly to k·η
over the first few steps (§2.2).

In ddlkit ``lr`` is the rate for one worker's batch; ``lr_scaling="linear"`` makes the
peak rate ``lr × workers``, reached after ``warmup_steps`` steps of linear ramp.
"""
from __future__ import annotations

from typing import Any

import torch

from ddlkit.config import Experiment
from ddlkit.modes import MODES
from ddlkit.train.optim import FlatOptimizer, make_optimizer


def optimizer_for(exp: Experiment, param: torch.Tensor) -> FlatOptimizer:
    """The experiment's optimiser over the flat tensor ``param``, with its LR schedule."""
    opt = make_optimizer(exp.optimizer, param, exp.lr, exp.momentum)
    return opt if exp.lr_scaling == "none" else Scheduled(opt, exp)


def lr_at(exp: Experiment, step: float) -> float:
    """The learning rate for optimiser step ``step`` (0-based, in synchronous steps).

    ``lr`` without scaling; with ``lr_scaling="linear"``: ``lr·N`` after warm-up, and
    ``lr + (lr·N − lr)·step/warmup_steps`` during it (Goyal et al. 2017, §2.2).
    """
    if exp.lr_scaling == "none":
        return exp.lr
    peak = exp.lr * exp.workers
    if step >= exp.warmup_steps:
        return peak
    return exp.lr + (peak - exp.lr) * step / exp.warmup_steps


def updates_per_step(exp: Experiment) -> int:
    """Worker gradients per synchronous step as the schedule counts them: N in async and
    ssp (their updates apply some of a round's gradients each: the registry's
    ``lr_per_gradient``), else 1 (one update a step)."""
    return exp.workers if MODES[exp.mode].lr_per_gradient else 1


class Scheduled(FlatOptimizer):
    """An optimiser whose learning rate follows :func:`lr_at`.

    Progress is counted in synchronous steps: one per update in sync, all-reduce and
    local SGD; in async and ssp, where an update folds in some of a round's N gradients,
    the gradients applied so far divided by N (``updates`` counts those gradients).
    """

    def __init__(self, inner: FlatOptimizer, exp: Experiment) -> None:
        super().__init__(inner.param, inner.lr)
        self.inner = inner
        self.exp = exp
        self.per_step = updates_per_step(exp)
        self.updates = 0

    @torch.no_grad()
    def step(self, grad: torch.Tensor, gradients: int = 1) -> None:
        self.lr = self.inner.lr = lr_at(self.exp, self.updates / self.per_step)
        self.inner.step(grad)
        self.updates += gradients if self.per_step > 1 else 1

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates, "inner": self.inner.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        self.inner.load_state_dict(state["inner"])


def torch_schedule(exp: Experiment,
                   opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    """The same schedule as a ``torch.optim.lr_scheduler.LambdaLR`` (for the reference).

    Written from the formula separately from :func:`lr_at`, so tests compare two versions.
    """
    n, w = exp.workers, exp.warmup_steps
    if exp.lr_scaling == "none":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: float(n) if t >= w else 1.0 + (n - 1.0) * t / w)


