"""Checks for exercise 9, ``topk_with_error_feedback(grad, residual, k)``.

The reference is the grader's own few lines around ``torch.topk`` on |g + e|, not the
learner's code and not ddlkit's compressor: the chosen positions, the sent values and the
new residual are compared with it, once, for a tricky case, and step by step over a run.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from ddlkit.exercises.grading import CheckFailed, Exercise, Learner

EXERCISE = Exercise(9, "ex09_topk_error_feedback", "top-k compression with error feedback")


class Sent(NamedTuple):
    """One compression: the dense tensor of what was sent, and the new residual."""

    dense: torch.Tensor
    residual: torch.Tensor
    indices: list[int]


def reference(grad: torch.Tensor, residual: torch.Tensor, k: int) -> Sent:
    """Top-k of p = grad + residual by ``torch.topk`` on |p|; residual = p where not sent."""
    p = grad + residual
    idx = torch.topk(p.abs(), k).indices
    dense = torch.zeros_like(p)
    dense[idx] = p[idx]
    rest = p.clone()
    rest[idx] = 0
    return Sent(dense, rest, sorted(idx.tolist()))


def _call(learner: Learner, grad: torch.Tensor, residual: torch.Tensor, k: int) -> Sent:
    """Run the learner's function on copies; check types and shapes; return it densified."""
    g, e = grad.clone(), residual.clone()
    out = learner.module().topk_with_error_feedback(g, e, k)
    if not torch.equal(g, grad) or not torch.equal(e, residual):
        raise CheckFailed("topk_with_error_feedback changed grad or residual in place; "
                          "compute p = grad + residual as a new tensor")
    if not isinstance(out, tuple) or len(out) != 3:
        raise CheckFailed("return a tuple (values, indices, new_residual)")
    values, indices, new_residual = out
    if not all(isinstance(t, torch.Tensor) for t in out):
        raise CheckFailed("values, indices and new_residual must all be torch tensors")
    if indices.dtype.is_floating_point or indices.dtype == torch.bool:
        raise CheckFailed(f"indices have dtype {indices.dtype}; positions are integers "
                          "(torch.int64 or torch.int32)")
    if values.shape != (k,) or indices.shape != (k,):
        raise CheckFailed(f"with k = {k} return {k} values and {k} indices; got shapes "
                          f"{tuple(values.shape)} and {tuple(indices.shape)}")
    if new_residual.shape != grad.shape or new_residual.dtype != grad.dtype:
        raise CheckFailed(f"new_residual has shape {tuple(new_residual.shape)} and dtype "
                          f"{new_residual.dtype}; it must match grad's")
    idx = indices.long()
    if len(set(idx.tolist())) != k or idx.min() < 0 or idx.max() >= grad.numel():
        raise CheckFailed(f"indices {idx.tolist()} are not {k} distinct positions in 0 … "
                          f"{grad.numel() - 1}")
    dense = torch.zeros_like(grad)
    dense[idx] = values.to(grad.dtype)
    return Sent(dense, new_residual, sorted(idx.tolist()))


def _gradient(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@EXERCISE.check("no residual yet: sends the k entries of largest magnitude, signs kept")
def largest_magnitudes(learner: Learner) -> None:
    grad = _gradient(20, seed=9)
    zero = torch.zeros_like(grad)
    got, ref = _call(learner, grad, zero, 5), reference(grad, zero, 5)
    if got.indices != ref.indices:
        signed = sorted(torch.topk(grad, 5).indices.tolist())
        hint = (": those are the largest values; rank by magnitude |g_i| (a large negative "
                "entry counts too)" if got.indices == signed else "")
        raise CheckFailed(f"k = 5 of 20: you sent positions {got.indices}, the largest "
                          f"|g_i| are at {ref.indices}{hint}")
    if not torch.equal(got.dense, ref.dense):
        hint = (" (you sent |g_i|; send g_i with its sign)"
                if torch.equal(got.dense, ref.dense.abs()) else "")
        raise CheckFailed(f"the right positions, but the values sent are not g at those "
                          f"positions{hint}")


@EXERCISE.check("the residual keeps exactly what was not sent: sent + residual = g + e")
def residual_is_the_rest(learner: Learner) -> None:
    grad, residual = _gradient(30, seed=1), 0.5 * _gradient(30, seed=2)
    got, ref = _call(learner, grad, residual, 6), reference(grad, residual, 6)
    if got.indices != ref.indices:
        raise CheckFailed(f"with a residual, you sent positions {got.indices}; the largest "
                          f"|g_i + e_i| are at {ref.indices}")
    if not torch.allclose(got.dense + got.residual, grad + residual, rtol=0, atol=1e-12):
        raise CheckFailed("what you sent plus new_residual is not grad + residual: the "
                          "residual must keep every entry that was not sent")
    if float(got.residual[ref.indices].abs().max()) != 0.0:
        raise CheckFailed("new_residual is not zero where you sent: an entry that was sent "
                          "would be sent again next step")


@EXERCISE.check("error feedback: the residual is added before choosing the top k")
def residual_changes_the_choice(learner: Learner) -> None:
    grad = torch.tensor([1.0, 0.5, 0.1, -0.2], dtype=torch.float64)
    residual = torch.tensor([0.0, 0.0, 0.0, -0.9], dtype=torch.float64)
    got = _call(learner, grad, residual, 1)
    if got.indices != [3]:
        hint = (": you chose by grad alone; choose by |grad + residual|"
                if got.indices == [0] else "")
        raise CheckFailed(f"grad [1.0, 0.5, 0.1, -0.2] with residual [0, 0, 0, -0.9], k = 1: "
                          f"position 3 (p = -1.1) must be sent, you sent {got.indices}{hint}")


@EXERCISE.check("60 steps of a run match the torch.topk reference step by step; "
                "with k = length everything is sent")
def a_whole_run(learner: Learner) -> None:
    mine = torch.zeros(25, dtype=torch.float64)
    ref_residual = torch.zeros(25, dtype=torch.float64)
    for step in range(60):
        grad = _gradient(25, seed=100 + step) + 0.3  # a steady drift that top-k alone drops
        got, ref = _call(learner, grad, mine, 3), reference(grad, ref_residual, 3)
        if got.indices != ref.indices or not torch.allclose(got.residual, ref.residual,
                                                            rtol=0, atol=1e-12):
            raise CheckFailed(f"step {step}: feeding your own new_residual back in, you sent "
                              f"{got.indices} where the reference sends {ref.indices}, or "
                              f"your residual differs from the reference's")
        mine, ref_residual = got.residual, ref.residual
    grad = _gradient(8, seed=7)
    everything = _call(learner, grad, torch.zeros_like(grad), 8)
    if not torch.equal(everything.dense, grad) or float(everything.residual.abs().max()) != 0:
        raise CheckFailed("with k = length every entry must be sent and the residual be zero")


def try_it(k: int = 2, steps: int = 3) -> None:
    """Show the learner's compression of one small gradient for a few steps."""
    from ddlkit.exercises import load

    module = load("ex09")
    grad = torch.tensor([0.9, -0.1, 0.05, -1.2, 0.3, 0.02])
    residual = torch.zeros_like(grad)
    for step in range(1, steps + 1):
        values, indices, residual = module.topk_with_error_feedback(grad, residual, k)
        print(f"step {step}: sent {[round(v, 2) for v in values.tolist()]} at "
              f"{indices.tolist()}, residual {[round(v, 2) for v in residual.tolist()]}")
