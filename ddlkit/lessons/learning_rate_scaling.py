"""Notebook 16: the linear-scaling race (Goyal et al. 2017), on an equal sample budget.

The schedule itself, :func:`~ddlkit.train.schedule.lr_at`, is engine code.
"""
from __future__ import annotations

from ddlkit.config import Experiment


def scaling_experiments(base: Experiment, workers: int, samples: int,
                        big_lr: float | None = None) -> dict[str, Experiment]:
    """The linear-scaling race on an equal budget of ``samples`` training samples.

    - ``1 worker``: ``base`` on one worker (the small-batch baseline);
    - ``N workers, same lr``: N× the batch per step, N× fewer steps, ``lr`` unchanged;
    - ``N workers, lr × N``: the same with ``lr_scaling="linear"`` (Goyal et al. 2017);
    - with ``big_lr``: the scaled rule from a base rate ``big_lr``, to see where it breaks.
    """
    per_step = base.batch_size
    one = base.replace(mode="sync", workers=1, steps=max(1, samples // per_step),
                       lr_scaling="none", warmup_steps=0)
    steps_n = max(1, samples // (per_step * workers))
    many = one.replace(workers=workers, steps=steps_n, eval_every=max(1, steps_n // 10))
    out = {"1 worker": one.replace(eval_every=max(1, one.steps // 10)),
           f"{workers} workers, same lr": many,
           f"{workers} workers, lr × {workers}": many.replace(lr_scaling="linear")}
    if big_lr is not None:
        out[f"{workers} workers, lr {big_lr:g} × {workers}"] = many.replace(
            lr=big_lr, lr_scaling="linear")
    return out
