"""Checks for exercise 10, ``backup_step(arrivals, backup)``.

The reference is autograd: the gradient of the mean loss over the union of the batches of
the workers that should be kept, which the grader knows from arrival times it chose itself
(:func:`ddlkit.exercises.ex01.shard_gradients`). Nothing is computed with the learner's code.
"""
from __future__ import annotations

from typing import Any

import torch

from ddlkit.exercises.ex01 import shard_gradients
from ddlkit.exercises.grading import CheckFailed, Exercise, Learner

EXERCISE = Exercise(10, "ex10_backup_workers", "backup workers: step with the first N − b")

TOLERANCE = 1e-9
#: one scenario per row: samples per worker (rank k + 1 has sizes[k]), arrival times (s),
#: the order the messages are listed in (ranks), b, and the ranks the server must drop
SCENARIOS: dict[str, dict[str, Any]] = {
    "no backup": dict(sizes=(5, 17, 40), times=(0.03, 0.01, 0.02), order=(1, 2, 3),
                      backup=0, dropped=()),
    "one backup": dict(sizes=(5, 17, 40, 9), times=(0.02, 0.09, 0.01, 0.04),
                       order=(1, 2, 3, 4), backup=1, dropped=(2,)),
    "two backups, listed out of order": dict(
        sizes=(12, 3, 30, 8, 21), times=(0.05, 0.01, 0.07, 0.02, 0.03),
        order=(3, 5, 1, 4, 2), backup=2, dropped=(1, 3)),
    "a tie": dict(sizes=(6, 6, 6), times=(0.02, 0.02, 0.02), order=(3, 2, 1),
                  backup=1, dropped=(3,)),
}


def scenario(name: str) -> tuple[list[tuple[float, int, int, torch.Tensor]], torch.Tensor]:
    """The arrivals of a scenario, in its listed order, and the reference average."""
    s = SCENARIOS[name]
    ranks = range(1, len(s["sizes"]) + 1)
    kept = [r - 1 for r in ranks if r not in s["dropped"]]
    grads, reference = shard_gradients(s["sizes"], seed=10, union=kept)
    by_rank = {r: (s["times"][r - 1], r, s["sizes"][r - 1], grads[r - 1]) for r in ranks}
    return [by_rank[r] for r in s["order"]], reference


def _call(learner: Learner, name: str) -> tuple[torch.Tensor, list[int], list[int]]:
    arrivals, _ = scenario(name)
    copies = [(t, r, n, g.clone()) for t, r, n, g in arrivals]
    out = learner.module().backup_step(copies, SCENARIOS[name]["backup"])
    if not (isinstance(out, tuple) and len(out) == 3 and isinstance(out[0], torch.Tensor)):
        raise CheckFailed(f"backup_step returned {type(out).__name__}; return a tuple "
                          "(average tensor, applied ranks, dropped ranks)")
    if [a[:3] for a in copies] != [a[:3] for a in arrivals] or not all(
            torch.equal(a[3], c[3]) for a, c in zip(arrivals, copies)):
        raise CheckFailed("backup_step changed its arrivals (the list or a gradient in place); "
                          "work on a sorted copy and build a new tensor")
    average, applied, dropped = out
    return average, list(applied), list(dropped)


def _check_sets(name: str, applied: list[int], dropped: list[int]) -> None:
    s = SCENARIOS[name]
    want_dropped = sorted(s["dropped"])
    want_applied = sorted(set(range(1, len(s["sizes"]) + 1)) - set(s["dropped"]))
    if dropped == want_dropped and applied == want_applied:
        return
    listed_last = sorted(s["order"][len(s["order"]) - s["backup"]:])
    hint = ""
    if s["backup"] and sorted(dropped) == listed_last and listed_last != want_dropped:
        hint = ": those are the last in the list, not the last to arrive; sort by time"
    elif sorted(dropped) == want_dropped and sorted(applied) == want_applied:
        hint = ": the right ranks, but return each list sorted"
    raise CheckFailed(f"{name} (b={s['backup']}, arrival times "
                      f"{dict(zip(range(1, 9), s['times']))}): you applied {applied} and "
                      f"dropped {dropped}; expected applied {want_applied}, dropped "
                      f"{want_dropped}{hint}")


def _check_average(name: str, average: torch.Tensor) -> None:
    arrivals, reference = scenario(name)
    if average.shape != reference.shape:
        raise CheckFailed(f"{name}: the average has shape {tuple(average.shape)}; the "
                          f"gradients have shape {tuple(reference.shape)}")
    error = float((average.to(reference.dtype) - reference).abs().max())
    if error <= TOLERANCE:
        return
    kept = [a for a in arrivals if a[1] not in SCENARIOS[name]["dropped"]]
    unweighted = torch.stack([g for _, _, _, g in kept]).mean(0)
    weighted = sum((n * g for _, _, n, g in arrivals), torch.zeros_like(arrivals[0][3]))
    everyone = weighted / sum(n for _, _, n, _ in arrivals)
    if torch.allclose(average.to(unweighted.dtype), unweighted):
        hint = " (it is the unweighted mean; weight each gradient by its sample count)"
    elif torch.allclose(average.to(everyone.dtype), everyone):
        hint = " (it averages every worker; leave the dropped gradients out)"
    else:
        hint = ""
    raise CheckFailed(f"{name}: your average differs from the large-batch gradient of the "
                      f"kept workers' batches by {error:.3g}{hint}")


def _verify(learner: Learner, *names: str) -> None:
    for name in names:
        average, applied, dropped = _call(learner, name)
        _check_sets(name, applied, dropped)
        _check_average(name, average)


@EXERCISE.check("b=0: nothing dropped, the average is the large-batch gradient (autograd)")
def no_backup(learner: Learner) -> None:
    _verify(learner, "no backup")


@EXERCISE.check("b=1 of 4: the last to arrive is dropped, the other 3 averaged by samples")
def one_backup(learner: Learner) -> None:
    _verify(learner, "one backup")


@EXERCISE.check("b=2 of 5, listed out of arrival order; and a tie goes to the lower rank")
def out_of_order(learner: Learner) -> None:
    _verify(learner, "two backups, listed out of order", "a tie")
