"""Stale Synchronous Parallel: s=0 is sync, the gate holds, s=∞ never gates, bytes add up.

Real runs on real gloo processes. The straggler is a sleep (``worker_delays``), so the
orderings asserted here hold on a loaded machine; no wall time is asserted.
"""
from __future__ import annotations

import numpy as np
import pytest

import ddlkit
from ddlkit import plots
from ddlkit.analysis import cost
from ddlkit.analysis.reference import large_batch_sgd
from ddlkit.lessons.bounded_staleness import StalenessSweep, loss_at, sweep_staleness
from ddlkit.runtime.result import RunResult
from ddlkit.strategies.ssp import released

STEPS = 12
DELAY = 0.03  # the straggler's sleep per step (s)


def equal_to_sync(workers: int, optimizer: str) -> ddlkit.Experiment:
    return ddlkit.Experiment(mode="ssp", staleness_bound=0, workers=workers, dataset="digits",
                             sharding="unbalanced", size_ratio=5.0, optimizer=optimizer,
                             lr=0.01 if optimizer == "adam" else 0.1, batch_size=16,
                             steps=STEPS, eval_every=STEPS, seed=3)


@pytest.mark.parametrize("workers,optimizer", [(2, "sgd"), (3, "sgd"), (3, "adam")])
def test_s0_equals_sync_and_large_batch_sgd(workers: int, optimizer: str) -> None:
    """With s=0 every reply waits for the whole clock, so each update is sync's step."""
    exp = equal_to_sync(workers, optimizer)
    ssp, sync = ddlkit.run(exp), ddlkit.run(exp.replace(mode="sync"))
    assert ssp.status == sync.status == "ok"
    assert np.abs(ssp.final_params - sync.final_params).max() < 1e-6
    assert np.abs(ssp.final_params - large_batch_sgd(exp)).max() < 1e-6
    assert np.abs(ssp.final_params - large_batch_sgd(exp.replace(steps=1))).max() > 1e-3
    assert ssp.staleness == [0] * (STEPS * workers)
    assert ssp.final["clock_gap_max"] == 0 and ssp.final["clocks"] == [STEPS] * workers
    assert ssp.history[-1]["step"] == STEPS


@pytest.fixture(scope="module")
def straggler_runs() -> dict[int | None, RunResult]:
    """3 workers, worker 3 sleeps every step: s=2 and s=∞ (s ≥ steps)."""
    base = ddlkit.Experiment(mode="ssp", workers=3, dataset="digits", steps=30, eval_every=5,
                             lr=0.05, worker_delays=(0.0, 0.0, DELAY))
    return {2: ddlkit.run(base.replace(staleness_bound=2)),
            None: ddlkit.run(base.replace(staleness_bound=30))}


def test_clock_gap_never_exceeds_s(straggler_runs: dict[int | None, RunResult]) -> None:
    run, s, n = straggler_runs[2], 2, 3
    assert run.status == "ok", run.error
    # Every reply left with c_i − min_j c_j ≤ s, and the fast workers did use all of s.
    assert all(row["clock_gap_max"] <= s for row in run.history)
    assert run.final["clock_gap_max"] == s
    assert run.final["gated"] > 0  # replies were held back for the straggler
    for row in run.history[1:]:
        live = [c for c in row["clocks"] if c is not None]
        assert max(live) - min(live) <= s + 1  # a released worker may push one more
    # A gradient pulled at clock c meets the others' clocks c−s+1 … c+s+1 at most.
    assert max(run.staleness) <= (n - 1) * (2 * s + 1)
    assert len(run.staleness) == 30 * n


def test_s_at_least_steps_never_gates(straggler_runs: dict[int | None, RunResult]) -> None:
    free, bounded = straggler_runs[None], straggler_runs[2]
    assert free.config.staleness_limit is None and free.config.label().split(" · ")[1] == "s=∞"
    assert all(row["gated"] == 0 for row in free.history)
    # Like async: the fast workers ran far ahead, the straggler sent few gradients.
    assert free.final["clock_gap_max"] > 2
    assert free.ranks[3].messages_sent < 0.5 * free.ranks[1].messages_sent
    assert max(free.staleness) > max(bounded.staleness)
    assert free.training_s < bounded.training_s


@pytest.mark.parametrize("bound", [0, 2])
def test_bytes_per_worker_are_the_ps_formula(bound: int,
                                            straggler_runs: dict[int | None, RunResult]
                                            ) -> None:
    """One gradient up, one model (plus its version) down, per message, as in the PS."""
    run = (ddlkit.run(equal_to_sync(3, "sgd").replace(sharding="iid")) if bound == 0
           else straggler_runs[bound])
    exp = run.config
    sent = [r.messages_sent for r in run.ranks[1:]]
    one = cost.ps_worker_step(cost.n_params(exp), cost.itemsize(exp), cost.HEADERS["ssp"])
    for totals, g in zip(run.ranks[1:], sent):
        assert cost.Traffic.of(totals) == one * g
    assert [cost.Traffic.of(r) for r in run.ranks] == cost.async_traffic(exp, sent)
    if bound == 0:  # everybody stops at the same clock: exactly sync's traffic per step
        assert sent == [exp.steps] * exp.workers
        assert cost.Traffic.of(run.ranks[0]) == exp.steps * cost.ps_server_step(
            exp.workers, cost.n_params(exp), cost.itemsize(exp), cost.HEADERS["ssp"])
    else:
        assert exp.steps * exp.workers <= sum(sent) <= cost.async_gradients(exp.workers,
                                                                            exp.steps)


def test_lost_worker_fails_by_default_and_leaves_the_minimum_on_continue() -> None:
    base = ddlkit.Experiment(mode="ssp", workers=3, dataset="digits", steps=20, eval_every=10,
                             staleness_bound=1, faults=("kill:2@5",), timeout_s=30.0)
    with pytest.raises(ddlkit.WorkerFailed) as info:
        ddlkit.run(base)
    assert info.value.rank == 2
    # With continue the survivors spend the budget: the lost worker's clock no longer
    # holds them back (with s=1 they would otherwise wait for it forever).
    run = ddlkit.run(base.replace(on_worker_loss="continue"))
    assert run.status == "ok" and [x["rank"] for x in run.lost] == [2]
    assert run.final["step"] == 20 and run.final["clocks"][1] is None
    assert len(run.staleness) == 20 * 3


def test_gate_lets_go_exactly_those_within_s_of_the_slowest() -> None:
    clocks = {1: 5, 2: 7, 3: 4}
    assert released(clocks, [1, 2], 0) == []
    assert released(clocks, [2, 1], 1) == [1]
    assert released(clocks, [1, 2, 3], 3) == [1, 2, 3]
    assert released(clocks, [2], None) == [2]
    assert released({1: 3, 2: 3}, [2, 1], 0) == [1, 2]


def _fake(exp: ddlkit.Experiment, t_end: float, losses: list[float]) -> RunResult:
    rows = [{"step": i, "samples": 0, "t": 1.0 + t_end * i / (len(losses) - 1),
             "test_loss": v, "accuracy": None, "bytes": 0} for i, v in enumerate(losses)]
    return RunResult(config=exp, history=rows)


def test_sweep_reads_both_sides_of_the_trade_off() -> None:
    """The sweep's numbers and the plot's lines are the runs' own (no processes here)."""
    base = ddlkit.Experiment(mode="ssp", steps=10)
    made: dict[int | None, RunResult] = {
        0: _fake(base.replace(staleness_bound=0), 4.0, [2.0, 1.0, 0.5]),
        3: _fake(base.replace(staleness_bound=3), 3.0, [2.0, 0.9, 0.6]),
        None: _fake(base.replace(staleness_bound=10), 1.0, [2.0, 1.5, 1.2])}  # 10 ≥ steps: ∞
    sweep = sweep_staleness(base, [0, 3, None], run=lambda e: made[e.staleness_bound])
    assert isinstance(sweep, StalenessSweep) and sweep.bounds == (0, 3, None)
    assert sweep.labels() == ["s=0", "s=3", "s=∞"]
    assert sweep.finish_s() == pytest.approx([4.0, 3.0, 1.0])
    assert sweep.final_loss() == [0.5, 0.6, 1.2]
    assert sweep.time_to(0.95) == [4.0, 1.5, None]
    assert sweep.loss_at(2.0) == [1.0, 0.9, 1.2] == [loss_at(r, 2.0) for r in sweep.results]
    assert "never" in sweep.table(0.95)
    fig = plots.bounded_delay(list(reversed(sweep.results)), target=0.95, at_s=2.0)
    ax_time, ax_loss = fig.axes[:2]
    lines = {ln.get_gid(): ln for ax in (ax_time, ax_loss) for ln in ax.get_lines()}
    assert list(lines["finish"].get_ydata()) == pytest.approx([4.0, 3.0, 1.0])  # sorted by s
    assert list(lines["to_target"].get_ydata()) == pytest.approx([4.0, 1.5])
    assert list(lines["final_loss"].get_ydata()) == [0.5, 0.6, 1.2]
    assert [t.get_text() for t in ax_time.get_xticklabels()] == ["0", "3", "∞"]
    with pytest.raises(ValueError, match="bounds"):
        sweep_staleness(base, [-1])
    with pytest.raises(ValueError, match="ssp"):
        plots.bounded_delay(_fake(ddlkit.Experiment(mode="sync"), 1.0, [1.0, 0.5]))


def test_sweep_counts_the_slowest_workers_steps() -> None:
    """To the target and to the end, in steps of the slowest worker (its clock)."""
    base = ddlkit.Experiment(mode="ssp", steps=4)
    sync = _fake(base.replace(staleness_bound=0), 4.0, [2.0, 1.0, 0.5])
    ahead = _fake(base.replace(staleness_bound=2), 3.0, [2.0, 0.9, 0.6])
    for r, clocks in ((sync, ([0, 0], [2, 2], [4, 4])), (ahead, ([0, 0], [1, 3], [None, 3]))):
        for row, c in zip(r.history, clocks):
            row["clocks"] = list(c)
    sweep = sweep_staleness(base, [0, 2], run=lambda e: {0: sync, 2: ahead}[e.staleness_bound])
    assert sweep.slowest_steps_to(1.0) == [2, 1]
    assert sweep.slowest_steps_to(0.1) == [None, None]
    assert sweep.slowest_steps() == [4, 3]  # a lost worker (None) leaves the minimum
    assert StalenessSweep(base, (0,), (_fake(base, 1.0, [1.0, 0.5]),)).slowest_steps() == [None]


def test_s0_with_lr_warmup_equals_sync_with_it() -> None:
    """The LR schedule counts a round's gradients, so s=0 warms up exactly as sync does."""
    exp = equal_to_sync(3, "sgd").replace(lr=0.05, lr_scaling="linear", warmup_steps=6)
    ssp, sync = ddlkit.run(exp), ddlkit.run(exp.replace(mode="sync"))
    assert ssp.status == sync.status == "ok"
    assert np.abs(ssp.final_params - sync.final_params).max() < 1e-6
    assert np.abs(sync.final_params - large_batch_sgd(exp)).max() < 1e-6


def test_unbounded_is_one_thing_in_a_run() -> None:
    """s=∞ written as None and as any s ≥ steps run the same (one worker: no timing)."""
    exp = ddlkit.Experiment(mode="ssp", workers=1, steps=12, eval_every=6, staleness_bound=None)
    runs = [ddlkit.run(exp), ddlkit.run(exp.replace(staleness_bound=12))]
    assert [r.status for r in runs] == ["ok", "ok"]
    assert np.array_equal(runs[0].final_params, runs[1].final_params)
    assert runs[0].config.label().split(" · ")[1] == "s=∞"
