"""A ring all-reduce written from point-to-point messages.

Reduce-scatter, then all-gather, each N-1 steps around the ring (Patarasuk & Yuan 2009,
"Bandwidth optimal all-reduce algorithms"). Each rank sends about 2(N-1)/N of the vector
in total, whatever N is, which is why per-worker traffic stays flat as workers are added.
The naive alternative, everyone sending everything to rank 0, is the parameter server.
"""
from __future__ import annotations

import torch

from ddlkit.comm.communicator import Communicator


def chunk_sizes(length: int, world_size: int) -> list[int]:
    """Split ``length`` elements into ``world_size`` chunks differing by at most one."""
    base, extra = divmod(length, world_size)
    return [base + (1 if i < extra else 0) for i in range(world_size)]


def ring_all_reduce(comm: Communicator, tensor: torch.Tensor) -> None:
    """Sum ``tensor`` across all ranks, in place, using only send/recv.

    Works for any world size and any length, including lengths not divisible by N
    (some chunks are one element longer, and empty chunks are skipped).
    """
    n, r = comm.world_size, comm.rank
    if n == 1:
        return
    flat = tensor.view(-1)
    sizes = chunk_sizes(flat.numel(), n)
    starts = [sum(sizes[:i]) for i in range(n)]
    chunks = [flat[s:s + k] for s, k in zip(starts, sizes)]
    right, left = (r + 1) % n, (r - 1) % n
    scratch = torch.empty(max(sizes), dtype=flat.dtype)

    # Reduce-scatter: after step s, chunk (r - s - 1) holds the sum of s + 2 ranks.
    for s in range(n - 1):
        out_i, in_i = (r - s) % n, (r - s - 1) % n
        exchange(comm, chunks[out_i], right, scratch[:sizes[in_i]], left)
        chunks[in_i].add_(scratch[:sizes[in_i]])
    # All-gather: rank r now owns the full sum of chunk (r + 1); pass sums around.
    for s in range(n - 1):
        out_i, in_i = (r + 1 - s) % n, (r - s) % n
        exchange(comm, chunks[out_i], right, chunks[in_i], left)


def exchange(comm: Communicator, out: torch.Tensor, dst: int,
             into: torch.Tensor, src: int) -> None:
    """Send ``out`` to ``dst`` while receiving ``into`` from ``src`` (empty: skipped).

    The receive is posted first. gloo's TCP transport holds a send back until the
    receiver has announced its receive; with the send posted first, the two directions of
    a shaped link were measured taking turns, so a swap of n bytes took 2·n·β instead of
    n·β (``benchmarks/bench_netns.py``, two network namespaces at 100 Mbit/s; on
    loopback the difference does not show).
    """
    pending = comm.irecv(into, src) if into.numel() else None
    handle = comm.isend(out, dst) if out.numel() else None
    if pending is not None:
        pending.wait()
    if handle is not None:
        handle.wait()
