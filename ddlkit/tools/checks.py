"""Small jobs that run on real gloo ranks to check the machine and the kit.

Each is a module-level function ``job(comm, reporter, ...)`` for
:func:`ddlkit.runtime.run_ranks`; tests and the set-up notebook use them.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from ddlkit.comm import Communicator
from ddlkit.comm.doubling import doubling_all_reduce
from ddlkit.comm.ring import ring_all_reduce


def hello(comm: Communicator, reporter: Any) -> dict[str, Any]:
    """Each rank contributes its rank number; everyone should see 0 + 1 + ... + (N-1)."""
    t = torch.tensor([float(comm.rank)])
    comm.all_reduce(t)
    return {"rank": comm.rank, "sum": float(t), "threads": torch.get_num_threads()}


def ring_vs_gloo(comm: Communicator, reporter: Any, lengths: list[int],
                 seed: int = 0, impl: str = "ring") -> dict[int, dict[str, Any]]:
    """For each length, the largest difference between a hand-written all-reduce
    (``impl``: ``ring`` or ``doubling``) and ``dist.all_reduce``, the bytes and messages
    this rank sent and received for it, and the result's bytes (to compare across ranks)."""
    out: dict[int, dict[str, Any]] = {}
    hand_written = {"ring": ring_all_reduce, "doubling": doubling_all_reduce}[impl]
    for length in lengths:
        g = torch.Generator().manual_seed(seed * 1_000_003 + comm.rank * 7919 + length)
        x = torch.randn(length, generator=g, dtype=torch.float64)
        mine, reference = x.clone(), x.clone()
        comm.recorder.drain()
        hand_written(comm, mine)
        events = comm.recorder.drain()
        sends = [e.nbytes for e in events if e.op == "send"]
        recvs = [e.nbytes for e in events if e.op == "recv"]
        dist.all_reduce(reference)  # the trusted reference, uninstrumented
        out[length] = {"max_diff": float((mine - reference).abs().max()), "sent": sum(sends),
                       "received": sum(recvs), "messages": (len(sends), len(recvs)),
                       "result": mine.numpy().tobytes()}
    return out


def all_gather_vs_gloo(comm: Communicator, reporter: Any, length: int,
                       dtype: str = "uint8", seed: int = 0) -> dict[str, Any]:
    """The instrumented all-gather against plain ``dist.all_gather`` of the same tensor:
    whether every gathered piece matches, and the bytes recorded."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + comm.rank)
    x = torch.randint(0, 256, (length,), generator=g).to(getattr(torch, dtype))
    mine = [torch.empty_like(x) for _ in range(comm.world_size)]
    reference = [torch.empty_like(x) for _ in range(comm.world_size)]
    comm.recorder.drain()
    comm.all_gather(mine, x, payload_bytes=length // 2)
    events = [e for e in comm.recorder.drain() if e.op == "all_gather"]
    dist.all_gather(reference, x)  # the trusted reference, uninstrumented
    return {"equal": all(torch.equal(a, b) for a, b in zip(mine, reference)),
            "own": torch.equal(mine[comm.rank], x),
            "events": [(e.nbytes, e.payload_bytes) for e in events]}


def raise_on_rank(comm: Communicator, reporter: Any, rank: int) -> None:
    """Rank ``rank`` raises; the others wait for it in a barrier (a deliberate failure)."""
    if comm.rank == rank:
        raise RuntimeError(f"deliberate failure on rank {rank}")
    comm.barrier()


def process_facts(comm: Communicator, reporter: Any, dataset: str = "digits") -> dict[str, Any]:
    """How this worker process was made: whether it has ``os.pidfd_open``, whether it
    inherited the forkserver's preloaded modules, and whether loading ``dataset`` needed
    scikit-learn (it does not when the on-disk dataset cache is warm)."""
    import os
    import sys

    from ddlkit.data import load_dataset

    had_sklearn = "sklearn" in sys.modules
    load_dataset(dataset)
    return {"pidfd": hasattr(os, "pidfd_open"),
            "preloaded": "ddlkit.runtime.warm" in sys.modules,
            "sklearn_before": had_sklearn,
            "sklearn_after": "sklearn" in sys.modules,
            "threads": torch.get_num_threads()}


def busy(comm: Communicator, reporter: Any, seconds: float) -> int:
    """Hold the CPU (and the GIL, between bytecodes) in pure Python for ``seconds``: a rank
    that is slow but alive, which the heartbeat must not mistake for a frozen one."""
    import time

    end, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        n += 1
    return n
