"""Recursive doubling: the latency-optimal all-reduce for small tensors.

In round k every rank swaps its whole vector with the rank whose number differs in bit k
and adds what it receives; after log₂N rounds everyone holds the sum (Thakur,
Rabenseifner & Gropp 2005, "Optimization of collective communication operations in
MPICH", §4.5). In the α–β model it costs ⌈log₂N⌉·α + ⌈log₂N⌉·M·s·β, against the ring's
2(N−1)·α + 2(N−1)/N·M·s·β: fewer, larger messages. For a small model, where every message
costs mostly its latency, that wins; for a large one the ring's bandwidth-optimality
wins. With N=2 both send exactly M, and doubling does it in one round instead of two.

When N is not a power of two, the r ≥ p ranks beyond the largest power of two p first
hand their vectors to rank r − p, wait while the first p ranks double, then get the sum
back (MPICH's approach). Both partners add the same two numbers (a + b = b + a exactly in
IEEE arithmetic), so every rank ends with a bitwise identical result.
"""
from __future__ import annotations

import torch

from ddlkit.comm.communicator import Communicator
from ddlkit.comm.ring import exchange


def largest_power_of_two(n: int) -> int:
    """The largest power of two ≤ ``n`` (n ≥ 1)."""
    return 1 << (n.bit_length() - 1)


def doubling_all_reduce(comm: Communicator, tensor: torch.Tensor) -> None:
    """Sum ``tensor`` across all ranks, in place, by recursive doubling (any N)."""
    n, r = comm.world_size, comm.rank
    if n == 1:
        return
    flat = tensor.view(-1)
    p = largest_power_of_two(n)
    if r >= p:  # an extra rank: fold into rank r − p, then get the sum back
        comm.send(flat, r - p)
        comm.recv(flat, r - p)
        return
    scratch = torch.empty_like(flat)
    if r < n - p:  # take in the extra rank's vector first
        comm.recv(scratch, r + p)
        flat.add_(scratch)
    mask = 1
    while mask < p:
        peer = r ^ mask
        exchange(comm, flat, peer, scratch, peer)  # both done before flat changes
        flat.add_(scratch)
        mask <<= 1
    if r < n - p:
        comm.send(flat, r + p)
