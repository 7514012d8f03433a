"""Checks for exercise 12, ``scaled_lr(step, base_lr, workers, warmup_steps)``.

References: torch's own ``LinearLR`` scheduler (a linear ramp of the scaled rate from the
factor 1/N to 1), and a single-process large-batch training on digits driven by the
learner's schedule, compared with one worker on the same number of samples.
"""
from __future__ import annotations

import math

import torch

from ddlkit.exercises.grading import CheckFailed, Exercise, Learner

EXERCISE = Exercise(12, "ex12_lr_warmup", "the linear scaling rule with warm-up")


def _rates(learner: Learner, base: float, workers: int, warmup: int, steps: int) -> list[float]:
    fn = learner.module().scaled_lr
    out = []
    for t in range(steps):
        value = fn(t, base, workers, warmup)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(
                value):
            raise CheckFailed(f"scaled_lr({t}, {base}, {workers}, {warmup}) returned "
                              f"{value!r}; return a finite number")
        out.append(float(value))
    return out


def _torch_rates(base: float, workers: int, warmup: int, steps: int) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base * workers)
    if warmup:
        sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / workers,
                                                  end_factor=1.0, total_iters=warmup)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if warmup:
            sched.step()
    return out


@EXERCISE.check("no warm-up: 8 workers at base rate 0.05 use 0.4 from the first step")
def no_warmup(learner: Learner) -> None:
    got = _rates(learner, 0.05, 8, 0, 3)
    if any(abs(g - 0.4) > 1e-12 for g in got):
        raise CheckFailed(f"you return {got} for steps 0-2; the linear scaling rule gives "
                          f"8 × 0.05 = 0.4 at every step")


@EXERCISE.check("warm-up over 5 steps equals torch's LinearLR ramp, then stays at N × lr")
def warmup_ramp(learner: Learner) -> None:
    for base, workers, warmup in ((0.05, 8, 5), (0.1, 4, 3), (0.2, 1, 4)):
        got = _rates(learner, base, workers, warmup, warmup + 3)
        want = _torch_rates(base, workers, warmup, warmup + 3)
        for t, (g, w) in enumerate(zip(got, want)):
            if abs(g - w) > 1e-9:
                raise CheckFailed(f"base {base}, {workers} workers, warm-up {warmup}: at step "
                                  f"{t} you return {g:.6g}, torch's LinearLR gives {w:.6g} "
                                  f"(all steps: {[round(x, 6) for x in want]})")


@EXERCISE.check("your schedule makes 8 workers learn as much per sample as 1 worker (digits)")
def per_sample(learner: Learner) -> None:
    from ddlkit.exercises._lr_race import race

    one, scaled = race(lambda t: learner.module().scaled_lr(t, 0.05, 8, 0))
    if not abs(scaled - one) <= 0.25 * one:
        raise CheckFailed(f"on 7,680 samples one worker reached test loss {one:.3f}, 8 workers "
                          f"with your rates {scaled:.3f}; they should be within 25%")
