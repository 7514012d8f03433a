"""The cost formulas (ddlkit.analysis.cost) against what real instrumented runs counted.

The runs' ``RankTotals`` come from the communicator's event log, an independent path
from the formulas. Payloads are checked against the textbook formulas written out here
(N·M at the server, M at a worker, 2(N−1)/N·M on the ring); whole-message bytes, with
ddlkit's headers, against :mod:`ddlkit.analysis.cost` exactly.
"""
from __future__ import annotations

import pytest

import ddlkit
from ddlkit.analysis import cost
from ddlkit.comm.ring import chunk_sizes
from ddlkit.data import DATASETS
from ddlkit.train.models import build_model

STEPS = 5
#: iris with 16 hidden units: M = 4·16 + 16 + 16·3 + 3 = 131, so M + 2 = 133 elements
#: split unevenly into 3 or 4 ring chunks
BASE = ddlkit.Experiment(dataset="iris", hidden=16, batch_size=8, steps=STEPS,
                         eval_every=STEPS, timeout_s=30.0)
M = 131


# -- the formulas alone (no processes) ----------------------------------------------------
@pytest.mark.parametrize("dataset,model", [("iris", "mlp"), ("digits", "mlp"),
                                           ("digits", "linear"), ("linreg", "linear"),
                                           ("linreg", "mlp")])
def test_n_params_counts_the_model(dataset: str, model: str) -> None:
    exp = ddlkit.Experiment(dataset=dataset, model=model, hidden=16)
    info = DATASETS[dataset]
    built = build_model(model, info, 16, 0)
    assert cost.n_params(exp) == sum(p.numel() for p in built.parameters())


def test_iris_size_used_below() -> None:
    assert cost.n_params(BASE) == M


@pytest.mark.parametrize("workers", [1, 2, 3, 5, 8])
def test_parameter_server_formulas(workers: int) -> None:
    server = cost.ps_server_step(workers, 1000, 4)
    worker = cost.ps_worker_step(1000, 4)
    assert server.payload_sent == server.payload_received == workers * 1000 * 4
    assert worker.payload_sent == worker.payload_received == 1000 * 4
    assert server.messages_sent == server.messages_received == workers
    # Every byte the server moves is a byte some worker moves: the server is N workers' worth.
    assert server.bytes == workers * worker.bytes
    with_header = cost.ps_server_step(workers, 1000, 4, cost.Header(push=3, pull=1))
    assert with_header.bytes_received == workers * 1003 * 4
    assert with_header.bytes_sent == workers * 1001 * 4
    assert with_header.payload_received == server.payload_received


@pytest.mark.parametrize("workers", [2, 3, 4, 5, 8])
def test_ring_is_2_n_minus_1_over_n_when_chunks_are_equal(workers: int) -> None:
    length = 840  # divisible by 2..8
    ideal = cost.ring_ideal_elements(workers, length)
    assert ideal == 2 * (workers - 1) * length / workers
    for rank in range(workers):
        t = cost.ring_worker_step(workers, length, rank, itemsize=8)
        assert t.bytes_sent == t.bytes_received == ideal * 8
        assert t.messages_sent == t.messages_received == 2 * (workers - 1)


@pytest.mark.parametrize("workers", [2, 3, 4, 7])
@pytest.mark.parametrize("length", [1, 2, 5, 131, 133, 1000])
def test_ring_with_uneven_chunks(workers: int, length: int) -> None:
    ranks = [cost.ring_worker_step(workers, length, r) for r in range(workers)]
    # What is sent is received: a ring loses nothing.
    assert sum(t.bytes_sent for t in ranks) == sum(t.bytes_received for t in ranks)
    assert sum(t.messages_sent for t in ranks) == sum(t.messages_received for t in ranks)
    # Each rank is within two chunks' rounding (one per phase) of the ideal.
    ideal = cost.ring_ideal_elements(workers, length) * 4
    for t in ranks:
        assert abs(t.bytes_sent - ideal) <= 2 * 4
        assert t.messages_sent <= 2 * (workers - 1)
    # Independently: per phase a rank sends N−1 of the N chunks, so in all it sends
    # 2·length minus the two chunks it skips (r+1 in reduce-scatter, r+2 in all-gather).
    sizes = chunk_sizes(length, workers)
    for r, t in enumerate(ranks):
        skipped = sizes[(r + 1) % workers] + sizes[(r + 2) % workers]
        assert t.bytes_sent == (2 * length - skipped) * 4


def test_async_gradient_budget() -> None:
    assert cost.async_gradients(workers=3, steps=10) == 32
    assert cost.async_gradients(workers=1, steps=10) == 10


def test_traffic_arithmetic_and_bad_input() -> None:
    one = cost.ps_worker_step(10, 4)
    assert one * 3 == 3 * one == one + one + one
    assert (one * 0) == cost.Traffic()
    with pytest.raises(ValueError, match="workers"):
        cost.ps_server_step(0, 10)
    with pytest.raises(ValueError, match="rank"):
        cost.ring_worker_step(3, 10, rank=3)
    with pytest.raises(ValueError, match="async_traffic"):
        cost.step_traffic(BASE.replace(mode="async"), 0)
    with pytest.raises(ValueError, match="k"):
        one * -1


# -- against real runs ---------------------------------------------------------------------
def _measured(result: ddlkit.RunResult) -> list[cost.Traffic]:
    return [cost.Traffic.of(r) for r in result.ranks]


@pytest.mark.parametrize("workers,dtype", [(2, "float32"), (3, "float64"), (4, "float32")])
def test_sync_parameter_server_counts(workers: int, dtype: str) -> None:
    exp = BASE.replace(mode="sync", workers=workers, dtype=dtype)
    s = 8 if dtype == "float64" else 4
    result = ddlkit.run(exp)
    server, *workers_t = result.ranks
    # Payload per step, the textbook formula: N·M each way at the server, M at each worker.
    assert server.payload_received == server.payload_sent == STEPS * workers * M * s
    for w in workers_t:
        assert w.payload_sent == w.payload_received == STEPS * M * s
    # Everything on the wire, headers included, exactly.
    assert _measured(result) == cost.run_traffic(exp)


@pytest.mark.parametrize("workers", [2, 3, 4])
def test_ring_allreduce_counts(workers: int) -> None:
    exp = BASE.replace(mode="allreduce", workers=workers)
    result = ddlkit.run(exp)
    length = M + 2  # the gradient and its 2 header elements are reduced as one buffer
    sizes = chunk_sizes(length, workers)
    for rank, r in enumerate(result.ranks):
        skipped = sizes[(rank + 1) % workers] + sizes[(rank + 2) % workers]
        assert r.payload_sent == STEPS * (2 * length - skipped) * 4
        assert abs(r.payload_sent / STEPS - 2 * (workers - 1) / workers * length * 4) <= 8
    assert _measured(result) == cost.run_traffic(exp)


def test_gloo_allreduce_counts() -> None:
    exp = BASE.replace(mode="allreduce", workers=3, allreduce_impl="gloo")
    result = ddlkit.run(exp)
    assert _measured(result) == cost.run_traffic(exp)


@pytest.mark.parametrize("workers", [2, 3, 4])
def test_async_parameter_server_counts(workers: int) -> None:
    exp = BASE.replace(mode="async", workers=workers)
    result = ddlkit.run(exp)
    server, *workers_t = result.ranks
    sent = [w.messages_sent for w in workers_t]
    # The budget, steps × workers gradients, plus one unapplied "last" gradient from
    # every worker but the one that spent the budget.
    assert STEPS * workers <= sum(sent) <= STEPS * workers + workers
    assert sum(sent) == cost.async_gradients(workers, STEPS)
    assert len(result.staleness) == STEPS * workers
    assert server.payload_received == server.payload_sent == sum(sent) * M * 4
    assert _measured(result) == cost.async_traffic(exp, sent)
