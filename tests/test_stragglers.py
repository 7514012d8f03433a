"""Straggler models (fixed, random, mid-run), speed-based batch sizes and step times."""
from __future__ import annotations

import numpy as np
import pytest

import ddlkit
from ddlkit import plots
from ddlkit.analysis.metrics import step_times
from ddlkit.analysis.reference import large_batch_sgd
from ddlkit.data.sampling import worker_batch_sizes
from ddlkit.faults import FaultPlan, parse_fault
from ddlkit.train.delays import RandomDelay, fixed_delay, speed_weights
from ddlkit.train.trainer import Trainer


def experiment(**kw: object) -> ddlkit.Experiment:
    base = dict(mode="sync", workers=3, dataset="digits", model="mlp", hidden=16,
                batch_size=16, steps=8, eval_every=8, seed=2)
    base.update(kw)
    return ddlkit.Experiment(**base)  # type: ignore[arg-type]


# -- random delays ------------------------------------------------------------------------
def test_random_delays_are_reproducible_per_seed_and_worker() -> None:
    a, b = RandomDelay(0.03, seed=7, worker=1).draws(50), RandomDelay(0.03, 7, 1).draws(50)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, RandomDelay(0.03, seed=8, worker=1).draws(50))
    assert not np.array_equal(a, RandomDelay(0.03, seed=7, worker=2).draws(50))
    assert (a >= 0).all()
    assert not RandomDelay(0.0, 7, 1).draws(5).any()


def test_random_delays_are_exponential_with_the_given_mean() -> None:
    draws = RandomDelay(0.02, seed=0, worker=0).draws(20_000)
    assert draws.mean() == pytest.approx(0.02, rel=0.05)
    # exponential: the median is mean·ln 2, and one in e² draws exceeds twice the mean
    assert np.median(draws) == pytest.approx(0.02 * np.log(2), rel=0.05)
    assert (draws > 0.04).mean() == pytest.approx(np.exp(-2), rel=0.1)


def test_workers_sleep_their_scheduled_random_delays() -> None:
    exp = experiment(random_delay_s=0.01, steps=5, eval_every=5)
    result = ddlkit.run(exp)
    for rank in (1, 2, 3):
        spans = sorted((e.t_post, e.t_end) for e in result.events
                       if e.rank == rank and e.op == "compute")
        scheduled = RandomDelay(0.01, exp.seed, rank - 1).draws(len(spans))
        assert len(spans) == exp.steps
        assert all(end - start >= d for (start, end), d in zip(spans, scheduled))
    # delays cost time, never change the result
    assert np.abs(result.final_params - large_batch_sgd(exp)).max() < 1e-6


# -- speed-based batch sizes -----------------------------------------------------------------
def test_speed_split_gives_the_slow_worker_a_smaller_batch() -> None:
    exp = experiment(worker_delays=(0.0, 0.004, 0.0), batch_split="speed")
    sizes = [Trainer(exp, k).sampler.batch_size for k in range(3)]
    assert sum(sizes) == exp.batch_size * exp.workers
    assert sizes[1] < sizes[0] == sizes[2]
    assert speed_weights(exp.replace(batch_split="shard")) is None
    equal = experiment(batch_split="speed")  # no delays: equal speeds, equal batches
    assert [Trainer(equal, k).sampler.batch_size for k in range(3)] == [16, 16, 16]
    # a slower processor: its delay scales with the work it is given
    assert fixed_delay(exp, 1, sizes[1]) == pytest.approx(0.004 * sizes[1] / 16)
    assert fixed_delay(exp.replace(batch_split="shard"), 1, 5) == 0.004


def test_speed_weights_respect_shard_bounds() -> None:
    assert worker_batch_sizes([100, 100], 10, weights=[1.0, 1.0]) == [10, 10]
    assert worker_batch_sizes([100, 3], 10, weights=[1.0, 9.0]) == [17, 3]  # capped by shard
    with pytest.raises(ValueError, match="weights"):
        worker_batch_sizes([100, 100], 10, weights=[1.0])
    with pytest.raises(ddlkit.ConfigError, match="batch_split"):
        experiment(sharding="stream", batch_split="speed")


def test_speed_split_keeps_the_large_batch_gradient_and_cuts_waiting() -> None:
    # a slow worker far slower than the machine's own costs, so that its sleep, not
    # processes taking turns on a busy machine, decides who waits
    delays = (0.1, 0.0, 0.0)
    by_shard = experiment(worker_delays=delays, steps=10, eval_every=10)
    by_speed = by_shard.replace(batch_split="speed")
    shard_run, speed_run = ddlkit.run(by_shard), ddlkit.run(by_speed)
    # the sample-weighted average is still large-batch SGD on the (now unequal) batches
    assert np.abs(speed_run.final_params - large_batch_sgd(by_speed)).max() < 1e-6
    assert np.abs(speed_run.final_params - large_batch_sgd(by_shard)).max() > 1e-4
    # the fast workers (ranks 2 and 3) no longer wait for the slow one
    shard_wait, speed_wait = (sum(r.wait_s for r in run.ranks[2:])
                              for run in (shard_run, speed_run))
    assert speed_wait < 0.5 * shard_wait


# -- step times and mid-run stragglers ----------------------------------------------------------
def test_step_times_include_the_straggler() -> None:
    result = ddlkit.run(experiment(worker_delays=(0.0, 0.0, 0.02)))
    times = step_times(result)
    assert len(times) == 8
    assert (times[1:] >= 0.02).all()  # the server waits for the straggler every step
    fig = plots.step_time_distribution(result)
    per_step, distribution = fig.axes
    line = next(ln for ln in per_step.get_lines() if ln.get_gid() == "steps-0")
    assert np.allclose(line.get_ydata(), times * 1000)
    assert per_step.get_ylabel() == "step time (ms)"
    assert np.allclose(distribution.get_lines()[0].get_xdata(), np.sort(times) * 1000)


def test_a_fault_planned_for_a_skipped_step_happens_at_the_next_one() -> None:
    plan = FaultPlan([parse_fault("delay:1@3=0.001")], rank=1)
    plan.before_step(1)
    plan.before_step(5)  # a worker with backup workers may jump from step 1 to step 5
    assert plan.extra_delay == 0.001
    resumed = FaultPlan([parse_fault("delay:1@3=0.001")], rank=1)
    resumed.before_step(6)  # a run resumed after step 5: the planned fault is in the past
    assert resumed.extra_delay == 0.0
