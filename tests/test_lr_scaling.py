"""The linear scaling rule with warm-up (Goyal et al. 2017) against torch's own scheduler."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import ddlkit
from ddlkit.analysis.reference import large_batch_sgd
from ddlkit.train.schedule import lr_at, torch_schedule


def experiment(**kw) -> ddlkit.Experiment:
    base = dict(mode="sync", workers=4, dataset="digits", model="mlp", sharding="unbalanced",
                size_ratio=3.0, lr=0.05, batch_size=16, steps=10, eval_every=10, seed=2,
                lr_scaling="linear", warmup_steps=4)
    base.update(kw)
    return ddlkit.Experiment(**base)


def test_schedule_ramps_from_lr_to_lr_times_n() -> None:
    exp = experiment()
    assert [lr_at(exp, t) for t in range(6)] == pytest.approx(
        [0.05, 0.0875, 0.125, 0.1625, 0.2, 0.2])
    assert lr_at(exp.replace(warmup_steps=0), 0) == pytest.approx(0.2)
    assert lr_at(exp.replace(lr_scaling="none"), 3) == 0.05


def test_schedule_matches_torch_lambda_lr() -> None:
    exp = experiment(workers=8, warmup_steps=5)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=exp.lr)
    sched = torch_schedule(exp, opt)
    for t in range(8):
        assert opt.param_groups[0]["lr"] == pytest.approx(lr_at(exp, t))
        opt.step()
        sched.step()


@pytest.mark.parametrize("mode", ["sync", "allreduce"])
def test_scaled_runs_equal_the_reference_with_torch_scheduler(mode: str) -> None:
    exp = experiment(mode=mode)
    result = ddlkit.run(exp)
    expected = large_batch_sgd(exp)
    assert np.abs(result.final_params - expected).max() < 1e-6
    unscaled = large_batch_sgd(exp.replace(lr_scaling="none"))
    assert np.abs(unscaled - expected).max() > 1e-3  # the schedule made a difference


def test_async_counts_warmup_in_rounds() -> None:
    """Async applies N updates per step: the warm-up spans warmup_steps × N updates."""
    from ddlkit.train.optim import SGD
    from ddlkit.train.schedule import Scheduled

    exp = experiment(mode="async", workers=2, warmup_steps=2)
    opt = Scheduled(SGD(torch.zeros(3), exp.lr), exp)
    seen = []
    for _ in range(6):
        opt.step(torch.zeros(3))
        seen.append(opt.lr)
    assert seen == pytest.approx([0.05, 0.0625, 0.075, 0.0875, 0.1, 0.1])
    state = opt.state_dict()
    again = Scheduled(SGD(torch.zeros(3), exp.lr), exp)
    again.load_state_dict(state)
    again.step(torch.zeros(3))
    assert again.lr == pytest.approx(0.1) and again.updates == 7
