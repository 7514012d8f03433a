"""Backup workers (Chen et al. 2016): the sync server steps with the first N−b gradients.

The server records, per step, whose gradients it applied and whose late ones it dropped
(``RunResult.applied`` / ``dropped``). The reference replays those records independently:
large-batch SGD on the union of the applied workers' batches, where every worker that
computed a gradient drew its next batch (:func:`ddlkit.analysis.reference.large_batch_sgd`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ddlkit
from ddlkit.analysis.reference import large_batch_sgd

STEPS = 12


def experiment(**kw: object) -> ddlkit.Experiment:
    base = dict(mode="sync", workers=4, dataset="digits", model="mlp", hidden=16,
                sharding="unbalanced", size_ratio=3.0, batch_size=8, steps=STEPS,
                eval_every=STEPS, seed=5)
    base.update(kw)
    return ddlkit.Experiment(**base)  # type: ignore[arg-type]


def gradients_received(result: ddlkit.RunResult) -> int:
    """Gradient messages the server took in (every one is applied or dropped)."""
    return sum(1 for e in result.events if e.rank == 0 and e.op == "recv")


def test_no_backup_workers_is_plain_sync() -> None:
    exp = experiment(workers=3)
    result = ddlkit.run(exp)
    assert result.applied == [[1, 2, 3]] * STEPS
    assert result.dropped == [[]] * STEPS
    assert np.abs(result.final_params - large_batch_sgd(exp)).max() < 1e-6


@pytest.mark.parametrize("backup", [1, 2])
def test_server_applies_exactly_n_minus_b_gradients_per_step(backup: int) -> None:
    exp = experiment(backup_workers=backup, random_delay_s=0.01)
    result = ddlkit.run(exp)
    assert result.status == "ok"
    assert len(result.applied) == len(result.dropped) == STEPS
    assert all(len(ranks) == exp.workers - backup for ranks in result.applied)
    for used, late in zip(result.applied, result.dropped):
        assert not set(used) & set(late)  # a gradient is applied or dropped, not both
        assert set(used) | set(late) <= {1, 2, 3, 4}
    # every gradient sent is accounted for: applied or dropped, none lost or counted twice
    sent = sum(1 for e in result.events if e.rank > 0 and e.op == "send")
    accounted = sum(map(len, result.applied)) + sum(map(len, result.dropped))
    assert gradients_received(result) == sent == accounted
    assert sum(map(len, result.dropped)) > 0  # with random delays somebody was late
    # the update averaged exactly the applied gradients, weighted by sample count
    reference = large_batch_sgd(exp, result.applied, result.dropped)
    assert np.abs(result.final_params - reference).max() < 1e-6
    assert np.abs(result.final_params - large_batch_sgd(exp)).max() > 1e-4  # ≠ plain sync


def test_a_fixed_straggler_is_always_the_one_dropped(tmp_path: Path) -> None:
    straggler = 4  # worker 4 is rank 4
    exp = experiment(backup_workers=1, worker_delays=(0.0, 0.0, 0.0, 0.08), steps=10)
    result = ddlkit.run(exp, record_dir=tmp_path)  # finishes however late the straggler is
    assert result.status == "ok"
    saved = ddlkit.load_result(tmp_path)
    assert (saved.applied, saved.dropped) == (result.applied, result.dropped)
    assert result.applied == [[1, 2, 3]] * 10
    late = [r for step in result.dropped for r in step]
    assert late and set(late) == {straggler}
    straggler_sent = sum(1 for e in result.events if e.rank == straggler and e.op == "send")
    assert len(late) == straggler_sent  # every one of its gradients was dropped
    assert straggler_sent < 10  # it skipped ahead instead of computing every step
    reference = large_batch_sgd(exp, result.applied, result.dropped)
    assert np.abs(result.final_params - reference).max() < 1e-6


def test_backup_workers_finish_sooner_with_a_fixed_straggler() -> None:
    delays = (0.0, 0.0, 0.06)
    plain = ddlkit.run(experiment(workers=3, worker_delays=delays, steps=10))
    backup = ddlkit.run(experiment(workers=3, worker_delays=delays, steps=10,
                                   backup_workers=1))
    assert backup.training_s < 0.6 * plain.training_s


def test_backup_workers_only_in_sync_mode() -> None:
    with pytest.raises(ddlkit.ConfigError, match="backup_workers"):
        experiment(mode="async", backup_workers=1)
    with pytest.raises(ddlkit.ConfigError, match="backup_workers"):
        experiment(backup_workers=4)


def test_a_lost_worker_leaves_n_minus_1_minus_b() -> None:
    exp = experiment(backup_workers=1, faults=("kill:2@5",), on_worker_loss="continue",
                     random_delay_s=0.005)
    result = ddlkit.run(exp)
    assert result.status == "ok", result.error
    assert [lost["rank"] for lost in result.lost] == [2]
    assert all(len(ranks) == 3 for ranks in result.applied[:4])  # before the loss: N − b
    assert all(2 not in ranks for ranks in result.applied[4:])  # it never sent again
    assert len(result.applied[-1]) == 2  # once the loss is noticed: N − 1 − b
