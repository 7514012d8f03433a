"""Checks for exercise 1, ``weighted_average(grads, counts)``.

The reference is autograd itself: the gradient of the mean loss over the concatenated
batches, which is what a single process training on the large batch would compute.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ddlkit.exercises.grading import CheckFailed, Exercise, Learner

EXERCISE = Exercise(1, "ex01_weighted_average", "weighted aggregation of unequal shards")

SHARD_SIZES = (5, 17, 40)


def shard_gradients(sizes: tuple[int, ...], seed: int = 0, union: Sequence[int] | None = None
                    ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per-shard mean gradients of a softmax regression, and the large-batch gradient.

    Both come from autograd on the same data: shard i is the next ``sizes[i]`` rows. The
    large batch is the union of all shards, or of the shards numbered in ``union``.
    """
    g = torch.Generator().manual_seed(seed)
    features, classes = 4, 3
    weight = torch.randn(classes, features, generator=g, dtype=torch.float64)
    bias = torch.randn(classes, generator=g, dtype=torch.float64)
    x = torch.randn(sum(sizes), features, generator=g, dtype=torch.float64)
    y = torch.randint(0, classes, (sum(sizes),), generator=g)

    def mean_gradient(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        w, b = weight.clone().requires_grad_(), bias.clone().requires_grad_()
        loss = F.cross_entropy(xs @ w.T + b, ys)
        return torch.cat([t.reshape(-1) for t in torch.autograd.grad(loss, [w, b])])

    shards = [mean_gradient(xs, ys) for xs, ys in zip(x.split(sizes), y.split(sizes))]
    keep = range(len(sizes)) if union is None else union
    return shards, mean_gradient(torch.cat([x.split(sizes)[i] for i in keep]),
                                 torch.cat([y.split(sizes)[i] for i in keep]))


def _call(learner: Learner, grads: list[torch.Tensor], counts: list[int]) -> torch.Tensor:
    out = learner.module().weighted_average(grads, counts)
    if not isinstance(out, torch.Tensor):
        raise CheckFailed(f"weighted_average returned {type(out).__name__}; return a "
                          "torch.Tensor")
    return out


@EXERCISE.check("two workers with 1 and 3 samples: the mean over all 4 samples, not 1/N Σ g_i")
def unequal_pair(learner: Learner) -> None:
    grads = [torch.tensor([1.0]), torch.tensor([3.0])]
    got = _call(learner, grads, [1, 3])
    if got.shape != (1,) or not torch.allclose(got, torch.tensor([2.5])):
        value = got.reshape(-1)[:1].tolist() if got.numel() else got.tolist()
        hint = (": that is the unweighted mean 1/N Σ g_i, which gives the one-sample worker "
                "as much say as the three-sample one" if value == [2.0] else "")
        raise CheckFailed(f"for gradient 1.0 (1 sample) and 3.0 (3 samples) you return "
                          f"{value}{hint}; the mean over all 4 samples is 2.5")


@EXERCISE.check("equals the large-batch gradient from autograd "
                "(3 workers with 5, 17 and 40 samples)")
def large_batch(learner: Learner) -> None:
    shards, reference = shard_gradients(SHARD_SIZES)
    inputs = [g.clone() for g in shards]
    got = _call(learner, inputs, list(SHARD_SIZES))
    for i, (before, after) in enumerate(zip(shards, inputs)):
        if not torch.equal(before, after):
            raise CheckFailed(f"weighted_average changed grads[{i}] in place; build a new "
                              "tensor (the caller still needs its inputs)")
    if got.shape != reference.shape:
        raise CheckFailed(f"result has shape {tuple(got.shape)}; the gradients have shape "
                          f"{tuple(reference.shape)}")
    error = float((got.to(reference.dtype) - reference).abs().max())
    if error > 1e-9:
        unweighted = torch.stack(shards).mean(0)
        hint = (" (it is the unweighted mean 1/N Σ g_i; weight each gradient by its sample "
                "count)" if torch.allclose(got.to(unweighted.dtype), unweighted) else "")
        raise CheckFailed(f"3 workers with {', '.join(map(str, SHARD_SIZES))} samples: your "
                          f"average differs from the large-batch gradient by {error:.3g}{hint}")


@EXERCISE.check("one worker: its gradient comes back unchanged, same shape and dtype")
def single_worker(learner: Learner) -> None:
    grad = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    got = _call(learner, [grad.clone()], [7])
    if got.shape != grad.shape or got.dtype != grad.dtype:
        raise CheckFailed(f"one worker with a {tuple(grad.shape)} float32 gradient: you "
                          f"return shape {tuple(got.shape)}, dtype {got.dtype}; keep both")
    error = float((got - grad).abs().max())
    if error > 1e-6:
        raise CheckFailed(f"one worker with 7 samples: the average should be its own gradient, "
                          f"but differs from it by {error:.3g}")
