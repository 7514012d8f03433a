"""Counted bytes against the cost formulas, per worker per step.

M is the number of model parameters and N the number of workers. Per step:
- PS server: receives N·M and sends N·M; each PS worker sends M and receives M;
- ring all-reduce: each worker sends (and receives) about 2(N−1)/N·M.
Messages also carry a small header (sample count, loss, version), counted separately.
"""
from __future__ import annotations

import pytest

import ddlkit
from ddlkit.data import DATASETS

STEPS = 6


def n_params(exp: ddlkit.Experiment) -> int:
    info = DATASETS[exp.dataset]
    d, k, h = info.n_features, info.n_classes, exp.hidden
    return d * h + h + h * k + k if exp.model == "mlp" else d * k + k


@pytest.mark.parametrize("workers", [2, 4])
def test_parameter_server_bytes(workers: int) -> None:
    exp = ddlkit.Experiment(mode="sync", workers=workers, dataset="iris", steps=STEPS,
                            hidden=16, batch_size=8, eval_every=STEPS)
    result = ddlkit.run(exp)
    m, item = n_params(exp), 4
    server, *worker_totals = result.ranks
    assert server.role == "server"
    assert server.payload_received == STEPS * workers * m * item
    assert server.payload_sent == STEPS * workers * m * item
    assert server.messages_received == server.messages_sent == STEPS * workers
    # + header: (sample count, loss, step) in, the next step out
    assert server.bytes_received == STEPS * workers * (m + 3) * item
    assert server.bytes_sent == STEPS * workers * (m + 1) * item
    for w in worker_totals:
        assert w.payload_sent == w.payload_received == STEPS * m * item
        assert w.messages_sent == STEPS


@pytest.mark.parametrize("workers", [2, 3, 4])
def test_ring_bytes_stay_flat(workers: int) -> None:
    exp = ddlkit.Experiment(mode="allreduce", workers=workers, dataset="iris", steps=STEPS,
                            hidden=16, batch_size=8, eval_every=STEPS)
    result = ddlkit.run(exp)
    length = n_params(exp) + 2  # parameters + header, reduced as one buffer
    ideal = 2 * (workers - 1) / workers * length * 4 * STEPS
    for r in result.ranks:
        assert abs(r.bytes_sent - ideal) <= 2 * (workers - 1) * 4 * STEPS  # uneven chunks
        assert r.messages_sent == 2 * (workers - 1) * STEPS


def test_async_bytes_match_updates() -> None:
    exp = ddlkit.Experiment(mode="async", workers=3, dataset="iris", steps=STEPS, hidden=16,
                            batch_size=8, eval_every=STEPS)
    result = ddlkit.run(exp)
    m = n_params(exp)
    server = result.ranks[0]
    # Every gradient is answered: budget updates plus one final "stop" reply per worker
    # whose last gradient arrived after the budget was spent.
    grads = server.messages_received
    assert STEPS * 3 <= grads <= STEPS * 3 + 3
    assert server.payload_received == grads * m * 4
    assert sum(w.messages_sent for w in result.ranks[1:]) == grads
    assert len(result.staleness) == STEPS * 3
