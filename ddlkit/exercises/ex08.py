"""Checks for exercise 8, ``average_models(comm, model, samples)``.

Local SGD's averaging step (McMahan et al. 2017): every rank replaces its model by the
sample-weighted mean Σ n_i θ_i / Σ n_i. One real run per world size (2 and 3); on every
rank the job calls the learner's function on models and counts made from a seed. The
reference is computed in the parent, in float64 with NumPy, from the same models; the
recorder shows how the learner communicated.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from ddlkit.comm import Communicator
from ddlkit.exercises.grading import (
    CheckFailed,
    Exercise,
    Learner,
    exercise_path,
    load_file,
    run_learner,
)

EXERCISE = Exercise(8, "ex08_model_average", "local SGD's sample-weighted model average")

#: per world size: samples each rank used since the last average (unequal on purpose)
COUNTS: dict[int, tuple[int, ...]] = {2: (1, 3), 3: (5, 17, 40)}
N_PARAMS = 1000
TOLERANCE = 1e-5  # float32 models against a float64 reference
HANG_HINT = ("a rank is waiting for the others: does every rank make the same "
             "communication calls, in the same order?")


def rank_model(world: int, rank: int, m: int = N_PARAMS) -> torch.Tensor:
    """Rank ``rank``'s float32 model in a world of ``world`` ranks (seeded, reproducible)."""
    g = torch.Generator().manual_seed(1000 * world + rank)
    return torch.randn(m, generator=g) + 2.0 * rank  # ranks far apart: weights matter


def reference(world: int, weighted: bool = True) -> np.ndarray:
    """Σ n_i θ_i / Σ n_i (or the plain mean) in float64, from the same models."""
    models = np.stack([rank_model(world, r).numpy().astype(np.float64) for r in range(world)])
    weights = np.asarray(COUNTS[world] if weighted else [1] * world, dtype=np.float64)
    return (weights[:, None] * models).sum(0) / weights.sum()


def average_job(comm: Communicator, reporter: Any, path: str,
                counts: tuple[int, ...]) -> dict[str, Any]:
    """Call the learner's ``average_models`` on this rank's model; report what happened."""
    average_models = load_file(path).average_models
    model = rank_model(comm.world_size, comm.rank)
    before = model.clone()
    comm.recorder.drain()
    total = average_models(comm, model, counts[comm.rank])
    events = comm.recorder.drain()
    return {
        "model": model.numpy().copy(),
        "dtype": str(model.dtype),
        "unchanged": bool(torch.equal(model, before)),
        "total": total,
        "ops": [e.op for e in events if e.op not in ("compute", "eval")],
        "sent": sum(e.nbytes for e in events if e.op != "recv"),
    }


def _outputs(learner: Learner, world: int) -> list[dict[str, Any]]:
    job = functools.partial(average_job, path=str(learner.path), counts=COUNTS[world])
    return learner.memo(world, lambda: learner.run(
        job, world, f"average_models on {world} ranks", HANG_HINT))


def _compare(learner: Learner, world: int) -> None:
    want = reference(world)
    for rank, out in enumerate(_outputs(learner, world)):
        got = out["model"].astype(np.float64)
        error = float(np.abs(got - want).max())
        if error <= TOLERANCE:
            continue
        counts = ", ".join(map(str, COUNTS[world]))
        if out["unchanged"]:
            hint = (": the model is unchanged; write the average into it in place "
                    "(model.copy_(...))")
        elif np.abs(got - reference(world, weighted=False)).max() <= TOLERANCE:
            few, many = min(COUNTS[world]), max(COUNTS[world])
            hint = (": that is the unweighted mean 1/N Σ θ_i, which gives the rank with "
                    f"{few} sample{'s' if few != 1 else ''} as much say as the one with "
                    f"{many}; weight each model by its samples")
        else:
            hint = ""
        raise CheckFailed(f"{world} ranks with {counts} samples: rank {rank}'s model differs "
                          f"from Σ n_i θ_i / Σ n_i by {error:.3g}{hint}")


@EXERCISE.check("two ranks with 1 and 3 samples: both hold Σ n_i θ_i / Σ n_i, not the "
                "plain mean")
def unequal_pair(learner: Learner) -> None:
    _compare(learner, 2)


@EXERCISE.check("three ranks with 5, 17 and 40 samples: every rank holds the weighted "
                "average of 1000 parameters, still float32")
def three_ranks(learner: Learner) -> None:
    _compare(learner, 3)
    for rank, out in enumerate(_outputs(learner, 3)):
        if out["dtype"] != "torch.float32":
            raise CheckFailed(f"rank {rank}'s model became {out['dtype']}; keep float32 "
                              "(write into the tensor you were given)")


@EXERCISE.check("returns Σ n_i, the samples behind the average, on every rank")
def returns_total(learner: Learner) -> None:
    for world in COUNTS:
        total = sum(COUNTS[world])
        for rank, out in enumerate(_outputs(learner, world)):
            got = out["total"]
            if isinstance(got, torch.Tensor) and got.numel() == 1:
                got = got.item()
            if not isinstance(got, (int, float)) or isinstance(got, bool) or got != total:
                raise CheckFailed(f"{world} ranks with {COUNTS[world]} samples: rank {rank} "
                                  f"returned {got!r}; return the total, {total}")


@EXERCISE.check("one comm.all_reduce per average: the count rides in the model's buffer")
def one_all_reduce(learner: Learner) -> None:
    for world in COUNTS:
        for rank, out in enumerate(_outputs(learner, world)):
            ops = out["ops"]
            if ops == ["all_reduce"]:
                continue
            if not ops:
                raise CheckFailed(f"{world} ranks: rank {rank} made no call through comm; "
                                  "sum across ranks with comm.all_reduce")
            raise CheckFailed(f"{world} ranks: rank {rank} called {', '.join(ops)}; one "
                              "comm.all_reduce is enough if the count travels in the same "
                              "buffer as the model (a tensor of M + 1 values)")


def try_it(world_size: int = 2, directory: str | None = None) -> list[dict[str, Any]]:
    """Run your average on ``world_size`` (2 or 3) real ranks; the first values of each
    rank's result next to the weighted and the unweighted reference."""
    if world_size not in COUNTS:
        raise ValueError(f"world_size: {world_size!r}; one of {', '.join(map(str, COUNTS))}")
    path = exercise_path(EXERCISE, directory)
    job = functools.partial(average_job, path=str(path), counts=COUNTS[world_size])
    load_file(path)  # a syntax error shows here, with its traceback
    outputs = run_learner(job, world_size, path, f"average_models on {world_size} ranks",
                          HANG_HINT)
    show = 3
    rows: list[dict[str, Any]] = []
    for rank, out in enumerate(outputs):
        rows.append({"rank": rank, "samples": COUNTS[world_size][rank],
                     "model before": np.round(rank_model(world_size, rank)[:show].numpy(), 4),
                     "yours after": np.round(out["model"][:show], 4),
                     "returned": out["total"], "calls": out["ops"]})
    rows.append({"rank": "weighted reference",
                 "yours after": np.round(reference(world_size)[:show], 4)})
    rows.append({"rank": "unweighted (wrong)",
                 "yours after": np.round(reference(world_size, weighted=False)[:show], 4)})
    return rows
