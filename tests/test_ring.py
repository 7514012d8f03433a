"""The hand-written ring all-reduce against gloo's own ``dist.all_reduce``."""
from __future__ import annotations

import functools

import pytest

from ddlkit.runtime import run_ranks
from ddlkit.tools.checks import ring_vs_gloo

LENGTHS = [1, 7, 1000]


def expected_ring_bytes(length: int, world: int, rank: int, itemsize: int = 8) -> int:
    """Bytes rank ``rank`` sends: one chunk per step, 2(N-1) steps, chunks of ~length/N."""
    sizes = [length // world + (1 if i < length % world else 0) for i in range(world)]
    reduce_scatter = sum(sizes[(rank - s) % world] for s in range(world - 1))
    all_gather = sum(sizes[(rank + 1 - s) % world] for s in range(world - 1))
    return (reduce_scatter + all_gather) * itemsize


@pytest.mark.parametrize("world", [2, 3, 4])
def test_ring_equals_gloo_all_reduce(world: int) -> None:
    outputs = run_ranks(functools.partial(ring_vs_gloo, lengths=LENGTHS, seed=world), world)
    for rank, per_length in enumerate(outputs):
        for length in LENGTHS:
            got = per_length[length]
            assert got["max_diff"] < 1e-12, (rank, length, got)
            assert got["sent"] == expected_ring_bytes(length, world, rank)
    # Bandwidth optimality: about 2(N-1)/N of the vector per rank, whatever N is.
    big = [o[1000]["sent"] / 8 for o in outputs]
    ideal = 2 * (world - 1) / world * 1000
    assert all(abs(b - ideal) <= 2 * (world - 1) for b in big)


@pytest.mark.parametrize("world", [2, 3, 4, 5])
def test_recursive_doubling_equals_gloo_and_its_cost_formula(world: int) -> None:
    """Recursive doubling: the same sum as gloo, bitwise the same on every rank, and the
    exact bytes and messages of :func:`ddlkit.analysis.cost.doubling_worker_step`."""
    from ddlkit.analysis.cost import doubling_worker_step

    outputs = run_ranks(functools.partial(ring_vs_gloo, lengths=LENGTHS, seed=world,
                                          impl="doubling"), world)
    for length in LENGTHS:
        results = {o[length]["result"] for o in outputs}
        assert len(results) == 1, f"ranks disagree bitwise for length {length}"
        for rank, per_length in enumerate(outputs):
            got = per_length[length]
            assert got["max_diff"] < 1e-12, (rank, length, got)
            want = doubling_worker_step(world, length, rank, itemsize=8)
            assert (got["sent"], got["received"]) == (want.bytes_sent, want.bytes_received)
            assert got["messages"] == (want.messages_sent, want.messages_received)
    # Latency-optimal: ⌈log₂N⌉ exchanges (plus a fold for N not a power of two).
    most = max(o[1000]["messages"][0] for o in outputs)
    assert most == {2: 1, 3: 2, 4: 2, 5: 3}[world]


class _Posts:
    """A stand-in communicator that only records the order in which operations are posted."""

    def __init__(self) -> None:
        self.order: list[str] = []

    def irecv(self, tensor: object, src: int) -> _Posts:
        self.order.append(f"irecv from {src}")
        return self

    def isend(self, tensor: object, dst: int) -> _Posts:
        self.order.append(f"isend to {dst}")
        return self

    def wait(self) -> int:
        self.order.append("wait")
        return 0


def test_an_exchange_posts_its_receive_before_its_send() -> None:
    """gloo holds a send until the peer has posted its receive; posted send-first, a swap
    over a shaped link took 2·n·β instead of n·β (benchmarks/bench_netns.py)."""
    import torch

    from ddlkit.comm.ring import exchange

    comm = _Posts()
    exchange(comm, torch.ones(3), 1, torch.empty(3), 2)  # type: ignore[arg-type]
    assert comm.order == ["irecv from 2", "isend to 1", "wait", "wait"]
    comm.order.clear()
    exchange(comm, torch.ones(0), 1, torch.empty(0), 2)  # type: ignore[arg-type]
    assert comm.order == []
