"""Checks for exercise 6, ``ps_bytes_per_step`` and ``ring_bytes_per_step``.

First against the cost formulas, then against what ddlkit's instrumented communicator
counted in two short real runs (``RunResult.ranks``): a sync parameter server with 2
workers, and a ring all-reduce with 3.
"""
from __future__ import annotations

import numbers
from typing import Any

from ddlkit.config import Experiment
from ddlkit.exercises.grading import CheckFailed, Exercise, Learner

EXERCISE = Exercise(6, "ex06_counting_bytes", "counting bytes: formula against measurement")

KEYS = ("server_sent", "server_received", "worker_sent", "worker_received")
WORKER_COUNTS = range(1, 9)
SIZES = (1, 7, 15, 1000)
ITEMSIZES = (4, 8)
STEPS = 3
#: the allreduce strategy reduces one buffer: the parameters plus 2 header values
ALLREDUCE_HEADER = 2
#: the measured runs' settings besides mode, workers and all-reduce (Experiment fields)
RUN: dict[str, Any] = dict(dataset="iris", model="linear", steps=STEPS, batch_size=8,
                           eval_every=STEPS, dtype="float32", timeout_s=30.0)
ITEMSIZE = 4  # float32


def ps_reference(workers: int, n_params: int, itemsize: int) -> dict[str, int]:
    model = n_params * itemsize
    return {"server_sent": workers * model, "server_received": workers * model,
            "worker_sent": model, "worker_received": model}


def _ps(learner: Learner, workers: int, n_params: int, itemsize: int) -> dict[str, Any]:
    call = f"ps_bytes_per_step(workers={workers}, n_params={n_params}, itemsize={itemsize})"
    got = learner.module().ps_bytes_per_step(workers, n_params, itemsize)
    if not isinstance(got, dict) or sorted(got) != sorted(KEYS):
        keys = sorted(got) if isinstance(got, dict) else type(got).__name__
        raise CheckFailed(f"{call} returned {keys}; expected a dict with keys {', '.join(KEYS)}")
    return got


def _ring(learner: Learner, workers: int, length: int, itemsize: int) -> float:
    got = learner.module().ring_bytes_per_step(workers, length, itemsize)
    if not isinstance(got, numbers.Real) or isinstance(got, bool):
        raise CheckFailed(f"ring_bytes_per_step(workers={workers}, length={length}, itemsize="
                          f"{itemsize}) returned {type(got).__name__}; expected a number of bytes")
    return float(got)


@EXERCISE.check("PS formula: payload per step for the server and a worker, N = 1…8")
def ps_formula(learner: Learner) -> None:
    why = {"server_sent": "the {m} parameters to each of {n} workers",
           "server_received": "one gradient of {m} values from each of {n} workers",
           "worker_sent": "one gradient of {m} values", "worker_received": "the {m} parameters"}
    for n in WORKER_COUNTS:
        for m in SIZES:
            for itemsize in ITEMSIZES:
                got, want = _ps(learner, n, m, itemsize), ps_reference(n, m, itemsize)
                for key in KEYS:
                    if got[key] != want[key]:
                        raise CheckFailed(
                            f"ps_bytes_per_step(workers={n}, n_params={m}, itemsize={itemsize})"
                            f"[{key!r}] = {got[key]}; expected {want[key]}: "
                            f"{why[key].format(m=m, n=n)}, {itemsize} bytes each")


@EXERCISE.check("ring formula: 2(N−1)/N · length · itemsize bytes per worker, N = 1…8")
def ring_formula(learner: Learner) -> None:
    for n in WORKER_COUNTS:
        for length in SIZES:
            for itemsize in ITEMSIZES:
                exact = 2 * (n - 1) * length * itemsize / n
                got = _ring(learner, n, length, itemsize)
                if abs(got - exact) >= 1:
                    raise CheckFailed(f"ring_bytes_per_step(workers={n}, length={length}, "
                                      f"itemsize={itemsize}) = {got:g}; expected "
                                      f"2(N−1)/N·length·itemsize = {exact:g}")


def _measured(learner: Learner, mode: str, workers: int) -> Any:
    import ddlkit

    exp = Experiment(mode=mode, workers=workers, allreduce_impl="ring", **RUN)
    return learner.memo(("run", mode), lambda: ddlkit.run(exp))


@EXERCISE.check("PS prediction = payload counted in a real sync run (2 workers)")
def ps_measured(learner: Learner) -> None:
    workers = 2
    result = _measured(learner, "sync", workers)
    m = int(result.final_params.size)
    predicted = _ps(learner, workers, m, ITEMSIZE)
    where = f"sync run with {workers} workers and {m} float32 parameters"
    for r in result.ranks:
        who = "the server" if r.role == "server" else f"worker rank {r.rank}"
        prefix = "server" if r.role == "server" else "worker"
        for direction, total in (("sent", r.payload_sent), ("received", r.payload_received)):
            per_step, key = total / STEPS, f"{prefix}_{direction}"
            if per_step != predicted[key]:
                raise CheckFailed(f"{where}: {who} {direction} {per_step:g} payload bytes per "
                                  f"step; you predict {predicted[key]}")


@EXERCISE.check("ring prediction = bytes counted in a real ring all-reduce run (3 workers)")
def ring_measured(learner: Learner) -> None:
    workers = 3
    result = _measured(learner, "allreduce", workers)
    length = int(result.final_params.size) + ALLREDUCE_HEADER
    predicted = _ring(learner, workers, length, ITEMSIZE)
    per_rank = [r.bytes_sent / STEPS for r in result.ranks]
    mean = sum(per_rank) / len(per_rank)
    if abs(mean - predicted) >= 1:
        raise CheckFailed(f"all-reduce run with {workers} workers reducing {length} float32 "
                          f"values: each rank sent {mean:.1f} bytes per step on average "
                          f"(ranks: {', '.join(f'{b:g}' for b in per_rank)}); you predict "
                          f"{predicted:g}")
