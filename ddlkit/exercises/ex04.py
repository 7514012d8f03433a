"""Checks for exercise 4, ``ring_all_reduce(comm, tensor)``.

One real run per world size (2, 3, 4). On every rank the job calls the learner's ring on
random float64 vectors of lengths 1, 7 and 1000, then sums a copy with gloo's own
``dist.all_reduce`` (called directly, uninstrumented) as the reference. The recorder
gives the bytes each rank sent and the operations it used.
"""
from __future__ import annotations

import functools
from typing import Any

import torch
import torch.distributed as dist

from ddlkit.comm import Communicator
from ddlkit.exercises.grading import (
    CheckFailed,
    Exercise,
    Learner,
    exercise_path,
    load_file,
    run_learner,
)

EXERCISE = Exercise(4, "ex04_ring_all_reduce", "ring all-reduce from send/recv")

WORLD_SIZES = (2, 3, 4)
LENGTHS = (1, 7, 1000)
#: the length whose traffic is checked against 2(N−1)/N·length
TRAFFIC_LENGTH = 1000
TOLERANCE = 1e-9
ITEMSIZE = torch.float64.itemsize
HANG_HINT = ("a rank is waiting for a message nobody sends: does every rank do the same "
             "number of steps, and is every send matched by a recv on the neighbour?")


def ring_job(comm: Communicator, reporter: Any, path: str, lengths: tuple[int, ...],
             seed: int) -> dict[int, dict[str, Any]]:
    """Per length: how far the learner's ring is from dist.all_reduce, and its traffic."""
    ring_all_reduce = load_file(path).ring_all_reduce
    out: dict[int, dict[str, Any]] = {}
    for length in lengths:
        g = torch.Generator().manual_seed(1_000_003 * seed + 7919 * comm.rank + length)
        original = torch.randn(length, generator=g, dtype=torch.float64)
        mine, reference = original.clone(), original.clone()
        comm.recorder.drain()
        ring_all_reduce(comm, mine)
        events = comm.recorder.drain()
        dist.all_reduce(reference)  # the trusted reference, outside the recorder
        diff = (mine - reference).abs()
        out[length] = {
            "max_diff": float(diff.max()),
            "unchanged": bool(torch.equal(mine, original)),
            "sent": sum(e.nbytes for e in events if e.op == "send"),
            "ops": sorted({e.op for e in events} - {"compute", "eval"}),
            "values": mine.tolist() if length <= 16 else None,
            "reference": reference.tolist() if length <= 16 else None,
        }
    return out


def _outputs(learner: Learner, world: int) -> list[dict[int, dict[str, Any]]]:
    job = functools.partial(ring_job, path=str(learner.path), lengths=LENGTHS, seed=world)
    return learner.memo(world, lambda: learner.run(
        job, world, f"ring_all_reduce on {world} ranks", HANG_HINT))


def ideal_values_sent(world: int, length: int) -> float:
    """Values one rank sends in a bandwidth-optimal ring: 2(N−1)/N·length."""
    return 2 * (world - 1) / world * length


@EXERCISE.check(f"equals dist.all_reduce on {', '.join(map(str, WORLD_SIZES))} ranks, "
                f"lengths {', '.join(map(str, LENGTHS))}")
def matches_gloo(learner: Learner) -> None:
    for world in WORLD_SIZES:
        outputs = _outputs(learner, world)
        for length in LENGTHS:
            for rank, per_length in enumerate(outputs):
                got = per_length[length]
                if got["max_diff"] <= TOLERANCE:
                    continue
                hint = (" (the tensor is unchanged: write the sum into it in place; "
                        "ring_all_reduce returns nothing)" if got["unchanged"] else "")
                raise CheckFailed(f"ring_all_reduce on {world} ranks, length {length}: rank "
                                  f"{rank} differs from dist.all_reduce by "
                                  f"{got['max_diff']:.3g}{hint}")


@EXERCISE.check("uses only point-to-point messages (no comm.all_reduce or comm.broadcast)")
def point_to_point_only(learner: Learner) -> None:
    for world in WORLD_SIZES:
        for rank, per_length in enumerate(_outputs(learner, world)):
            for length in LENGTHS:
                extra = [op for op in per_length[length]["ops"] if op not in ("send", "recv")]
                if extra:
                    raise CheckFailed(f"ring_all_reduce on {world} ranks: rank {rank} called "
                                      f"comm.{extra[0]}; build the sum from send and recv")


@EXERCISE.check(f"each rank sends about 2(N−1)/N·length values (length {TRAFFIC_LENGTH})")
def bandwidth_optimal(learner: Learner) -> None:
    for world in WORLD_SIZES:
        ideal = ideal_values_sent(world, TRAFFIC_LENGTH)
        slack = 2 * (world - 1) + 0.01 * ideal  # chunk sizes that differ by one
        for rank, per_length in enumerate(_outputs(learner, world)):
            sent = per_length[TRAFFIC_LENGTH]["sent"]
            values = sent / ITEMSIZE
            if abs(values - ideal) <= slack:
                continue
            if sent == 0:
                raise CheckFailed(f"ring_all_reduce on {world} ranks: rank {rank} sent nothing "
                                  "through comm; send with comm.send or comm.isend so the "
                                  "messages are counted")
            raise CheckFailed(f"ring_all_reduce on {world} ranks, length {TRAFFIC_LENGTH}: rank "
                              f"{rank} sent {values:.0f} values ({sent} bytes); a ring sends "
                              f"about 2(N−1)/N·length = {ideal:.0f} (everyone sending "
                              f"everything to everyone costs (N−1)·length = "
                              f"{(world - 1) * TRAFFIC_LENGTH})")


def try_it(world_size: int = 3, length: int = 7, directory: str | None = None
           ) -> list[dict[str, Any]]:
    """Run your ring on ``world_size`` real ranks; each rank's result next to gloo's."""
    path = exercise_path(EXERCISE, directory)
    job = functools.partial(ring_job, path=str(path), lengths=(length,), seed=world_size)
    load_file(path)  # a syntax error shows here, with its traceback
    outputs = run_learner(job, world_size, path, f"ring_all_reduce on {world_size} ranks",
                          HANG_HINT)
    rows = []
    for rank, per_length in enumerate(outputs):
        got = per_length[length]
        row: dict[str, Any] = {"rank": rank, "max |yours − dist.all_reduce|": got["max_diff"],
                               "bytes sent": got["sent"]}
        if got["values"] is not None:
            row["yours"] = " ".join(f"{v:.4g}" for v in got["values"])
            row["dist.all_reduce"] = " ".join(f"{v:.4g}" for v in got["reference"])
        rows.append(row)
    return rows
