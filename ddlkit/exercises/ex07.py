"""Checks for exercise 7, ``ssp_gate(clocks, waiting, bound)``.

The reference is the SSP condition read literally (Ho et al. 2013, §2): a waiting worker
may go on iff its clock is at most s ahead of *every* live worker's clock. It is applied
to hand-picked cases, to seeded random cases, and to a small simulated run (three workers,
one four times slower) in which the learner's gate decides every release.
"""
from __future__ import annotations

import copy
import random
from typing import Callable

from ddlkit.exercises.grading import CheckFailed, Exercise, Learner

EXERCISE = Exercise(7, "ex07_ssp_gate", "the stale-synchronous gate: who may start the next step")

Gate = Callable[[dict[int, int], list[int], "int | None"], list[int]]
#: time units per step of each worker in the simulated run: worker 3 is the straggler
SPEEDS = {1: 1, 2: 1, 3: 4}
SIM_STEPS, SIM_BOUND = 12, 2


def reference_gate(clocks: dict[int, int], waiting: list[int], bound: int | None) -> list[int]:
    """Waiting ranks at most ``bound`` ahead of each live worker (all of them if None)."""
    return [r for r in sorted(set(waiting))
            if bound is None or all(clocks[r] - c <= bound for c in clocks.values())]


def _min_over_waiting(clocks: dict[int, int], waiting: list[int], bound: int) -> list[int]:
    """The usual slip: the slowest among the *waiting* workers only."""
    slowest = min(clocks[r] for r in waiting)
    return sorted(r for r in waiting if clocks[r] - slowest <= bound)


def _call(learner: Learner, clocks: dict[int, int], waiting: list[int],
          bound: int | None) -> list[int]:
    args = (copy.deepcopy(clocks), list(waiting))
    got = learner.module().ssp_gate(args[0], args[1], bound)
    if args != (clocks, waiting):
        raise CheckFailed(f"ssp_gate({clocks}, {waiting}, {bound}) changed its arguments; "
                          "leave clocks and waiting as they are")
    if not isinstance(got, list) or not all(isinstance(r, int) for r in got):
        raise CheckFailed(f"ssp_gate returned {got!r}; return a list of ranks (ints)")
    return got


def _expect(learner: Learner, clocks: dict[int, int], waiting: list[int],
            bound: int | None) -> None:
    got, want = _call(learner, clocks, waiting, bound), reference_gate(clocks, waiting, bound)
    if got == want:
        return
    hint = ""
    if bound is not None and got == _min_over_waiting(clocks, waiting, bound):
        hint = ("; the slowest worker may be one that is still computing: take the minimum "
                "over every live worker's clock, not only the waiting ones")
    elif sorted(got) == want:
        hint = "; return the ranks in increasing order"
    elif bound is not None and got == reference_gate(clocks, waiting, bound - 1):
        hint = "; a worker exactly s ahead of the slowest may still go (≤ s, not < s)"
    s = "∞ (None)" if bound is None else bound
    raise CheckFailed(f"clocks {clocks}, waiting {waiting}, s = {s}: you let {got} go; "
                      f"expected {want}{hint}")


@EXERCISE.check("s = 0: nobody starts clock c + 1 before every worker has finished clock c")
def synchronous(learner: Learner) -> None:
    _expect(learner, {1: 3, 2: 3, 3: 2}, [1, 2], 0)
    _expect(learner, {1: 3, 2: 3, 3: 3}, [2, 3, 1], 0)


@EXERCISE.check("s = 2 with a straggler: fast workers run up to 2 steps ahead, no more")
def bounded(learner: Learner) -> None:
    _expect(learner, {1: 5, 2: 4, 3: 2, 4: 3}, [1, 2, 4], 2)
    _expect(learner, {1: 4, 2: 2}, [1], 2)


@EXERCISE.check("no bound (None): every waiting worker goes, in rank order")
def unbounded(learner: Learner) -> None:
    _expect(learner, {1: 9, 2: 0, 3: 4}, [3, 1], None)
    _expect(learner, {1: 1, 2: 1}, [], 1)


@EXERCISE.check("200 random clocks, waiting sets and bounds")
def random_cases(learner: Learner) -> None:
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(1, 6)
        clocks = {r: rng.randint(0, 12) for r in range(1, n + 1)}
        waiting = rng.sample(sorted(clocks), rng.randint(0, n))
        _expect(learner, clocks, waiting, rng.choice([0, 1, 2, 3, 5, None]))


def simulate(gate: Gate, bound: int | None, steps: int = SIM_STEPS
             ) -> list[tuple[int, int, int]]:
    """A run in which ``gate`` decides: (time, rank, clock) of every release, in order.

    Every worker starts step 1 at time 0 and takes ``SPEEDS[rank]`` time units a step.
    Raises CheckFailed if the run stalls with workers held back and nobody computing.
    """
    clocks = {r: 0 for r in SPEEDS}
    busy = dict(SPEEDS)  # rank -> time its current step ends
    waiting: list[int] = []
    releases: list[tuple[int, int, int]] = []
    while busy:
        now = min(busy.values())
        for r in sorted(r for r, t in busy.items() if t == now):
            del busy[r]
            clocks[r] += 1
            if clocks[r] < steps:
                waiting.append(r)
        go = gate(dict(clocks), list(waiting), bound)
        for r in go:
            if r not in waiting:
                raise CheckFailed(f"at time {now} (clocks {clocks}, waiting {waiting}) you let "
                                  f"worker {r} go, but it was not waiting")
            waiting.remove(r)
            releases.append((now, r, clocks[r]))
            busy[r] = now + SPEEDS[r]
        if waiting and not busy:
            raise CheckFailed(f"the simulated run stalled at time {now}: clocks {clocks}, "
                              f"workers {waiting} held back and nobody computing")
    return releases


@EXERCISE.check(f"a simulated run (worker 3 four times slower, s = {SIM_BOUND}): the same "
                "releases as the reference, the gap never above s")
def simulated_run(learner: Learner) -> None:
    def gate(clocks: dict[int, int], waiting: list[int], bound: int | None) -> list[int]:
        return _call(learner, clocks, waiting, bound)

    got, want = simulate(gate, SIM_BOUND), simulate(reference_gate, SIM_BOUND)
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            raise CheckFailed(f"release {i + 1}: you let worker {g[1]} start step {g[2] + 1} "
                              f"at time {g[0]}; the reference lets worker {w[1]} start step "
                              f"{w[2] + 1} at time {w[0]}")
    if len(got) != len(want):
        raise CheckFailed(f"{len(got)} releases in the simulated run; expected {len(want)}")
