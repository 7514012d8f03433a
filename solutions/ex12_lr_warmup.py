"""Exercise 12: the linear learning-rate scaling rule with gradual warm-up.

Goyal et al. (2017), "Accurate, Large Minibatch SGD": when N workers each draw a batch,
a synchronous step uses an N-times larger batch, so multiply the learning rate by N.
Early in training that jump can be too much; gradual warm-up starts at the one-worker
rate and raises it linearly, reaching N times it after ``warmup_steps`` steps:

    lr(t) = base_lr + (N·base_lr − base_lr) · t / warmup_steps    for t < warmup_steps
    lr(t) = N·base_lr                                             afterwards
"""
from __future__ import annotations


def scaled_lr(step: int, base_lr: float, workers: int, warmup_steps: int) -> float:
    """The learning rate for step ``step`` (0-based) with ``workers`` synchronous workers.

    ``base_lr`` is the rate that suits one worker's batch. With ``warmup_steps = 0`` the
    scaled rate applies from the first step.
    """
    # BEGIN SOLUTION
    # HINT: the target is workers × base_lr; before warmup_steps, go a fraction
    #   step / warmup_steps of the way from base_lr to it.
    peak = base_lr * workers
    if step >= warmup_steps:
        return peak
    return base_lr + (peak - base_lr) * step / warmup_steps
    # END SOLUTION
