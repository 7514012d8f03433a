"""Rank jobs for the benchmarks, run with :func:`ddlkit.runtime.run_ranks`.

Each is ``job(comm, reporter, ...)`` on a rank whose default gloo process group is
already initialised (one compute thread, as in every ddlkit worker), so a baseline runs
in exactly the processes ddlkit's own strategies get. Bind the keyword arguments with
``functools.partial``.
"""
from __future__ import annotations

import time
from functools import partial
from typing import Any, Callable

import torch
import torch.distributed as dist

from ddlkit.comm import Communicator, ring_all_reduce
from ddlkit.comm.protocol import Reporter
from ddlkit.data import load_dataset
from ddlkit.train.models import build_model, loss_fn


def ddp_training(comm: Communicator, reporter: Reporter, *, hidden: int, steps: int,
                 warmup: int, batch_size: int = 32, lr: float = 0.1,
                 seed: int = 0) -> dict[str, Any]:
    """Train ddlkit's digits MLP with ``torch.nn.parallel.DistributedDataParallel``.

    Plain DDP on gloo: SGD, ``batch_size`` samples per rank per step, drawn at random.
    Only the ``steps`` steps after ``warmup`` are timed (the first iterations build
    DDP's buckets). Returns the training samples per second of all ranks together.
    """
    from torch.nn.parallel import DistributedDataParallel

    data = load_dataset("digits")
    model = DistributedDataParallel(build_model("mlp", data.info, hidden, seed))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed + comm.rank)
    t0 = time.perf_counter()
    for step in range(warmup + steps):
        if step == warmup:
            dist.barrier()
            t0 = time.perf_counter()
        idx = torch.randint(0, data.info.n_train, (batch_size,), generator=gen)
        opt.zero_grad(set_to_none=True)
        loss_fn(data.info, model(data.x_train[idx]), data.y_train[idx]).backward()
        opt.step()
    elapsed = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    return {"samples_per_s": steps * batch_size * comm.world_size / elapsed, "params": params}


def allreduce_timings(comm: Communicator, reporter: Reporter, *, sizes: list[int],
                      repeats: int, warmup: int = 1, max_burst: int = 50,
                      burst_floats: int = 60_000_000) -> dict[int, dict[str, list[float]]]:
    """Seconds per sum all-reduce of ``n`` float32s, for each ``n`` in ``sizes``.

    Three ways: ``raw`` (``dist.all_reduce``), ``comm`` (ddlkit's instrumented
    :meth:`Communicator.all_reduce`) and ``ring`` (ddlkit's hand-written ring). One
    repetition, after a barrier, is a burst of operations in which the ways take turns
    (raw, comm, ring, then comm, ring, raw, ...), each timed alone, so that whatever
    else the machine does hits all three alike; the burst moves about ``burst_floats``
    floats per way, in 3 to ``max_burst`` operations (a multiple of 3, so each way takes
    each place in the turn equally often). Returns rank 0's time of every operation
    after the warm-up repetitions, for each size and way: the i-th times of the three
    ways were taken one right after another, so they can be compared pairwise.
    """
    out: dict[int, dict[str, list[float]]] = {}
    for n in sizes:
        t = torch.zeros(n)  # zeros: repeated sums stay finite
        ways: list[tuple[str, Callable[[], object]]] = [
            ("raw", partial(dist.all_reduce, t)),
            ("comm", partial(comm.all_reduce, t)),
            ("ring", partial(ring_all_reduce, comm, t)),
        ]
        burst = 3 * max(1, min(max_burst, burst_floats // max(n, 1)) // 3)
        times: dict[str, list[float]] = {k: [] for k, _ in ways}
        for rep in range(warmup + repeats):
            dist.barrier()
            for i in range(burst):
                for name, op in ways[i % 3:] + ways[:i % 3]:
                    t0 = time.perf_counter()
                    op()
                    if rep >= warmup:
                        times[name].append(time.perf_counter() - t0)
            comm.recorder.drain()  # the events are not wanted; do not let them pile up
        out[n] = times
    return out
