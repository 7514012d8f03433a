"""Sync PS and all-reduce against the trusted reference: single-process large-batch SGD.

The reference (:mod:`ddlkit.analysis.reference`) trains an ordinary ``nn.Module`` with
``torch.optim`` over its own parameters, on the union of the batches the workers drew
at each step. Shards are
unbalanced, so workers' batches differ in size and only a sample-weighted average can
match it.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import ddlkit
from ddlkit.analysis.reference import large_batch_sgd
from ddlkit.data import load_dataset, make_sampler, make_shards
from ddlkit.train.models import build_model

STEPS = 12


def reference_params(exp: ddlkit.Experiment) -> np.ndarray:
    return large_batch_sgd(exp)


def experiment(mode: str, workers: int, optimizer: str, **kw) -> ddlkit.Experiment:
    return ddlkit.Experiment(mode=mode, workers=workers, dataset="digits", model="mlp",
                             sharding="unbalanced", size_ratio=5.0, optimizer=optimizer,
                             lr=0.01 if optimizer == "adam" else 0.1, batch_size=16,
                             steps=STEPS, eval_every=STEPS, seed=3, **kw)


@pytest.mark.parametrize("workers,optimizer", [
    pytest.param(2, "sgd", marks=pytest.mark.portable), (2, "momentum"), (2, "adam"),
    (4, "sgd"), (4, "momentum"), pytest.param(4, "adam", marks=pytest.mark.portable)])
def test_sync_ps_equals_large_batch_sgd(workers: int, optimizer: str) -> None:
    exp = experiment("sync", workers, optimizer)
    result = ddlkit.run(exp)
    expected = reference_params(exp)
    assert result.final_params is not None
    assert np.abs(result.final_params - expected).max() < 1e-6
    assert np.abs(expected - reference_params(exp.replace(steps=1))).max() > 1e-3  # it moved


@pytest.mark.parametrize("workers,impl", [
    pytest.param(w, i, marks=pytest.mark.portable) if (w, i) in {(3, "gloo"), (3, "ring")}
    else (w, i) for i in ("ring", "doubling", "gloo") for w in (2, 3, 4)])
def test_allreduce_equals_large_batch_sgd(workers: int, impl: str) -> None:
    exp = experiment("allreduce", workers, "momentum", allreduce_impl=impl)
    result = ddlkit.run(exp)
    assert np.abs(result.final_params - reference_params(exp)).max() < 1e-6


def test_unweighted_average_would_not_match() -> None:
    """The check above can fail: the seed's unweighted mean gives different parameters."""
    exp = experiment("sync", 2, "sgd")
    data = load_dataset(exp.dataset)
    shards = make_shards("unbalanced", data.y_train.numpy(), data.info.n_train, 2, seed=exp.seed,
                         size_ratio=exp.size_ratio)
    samplers = [make_sampler("unbalanced", shards, data.info.n_train, 2, w, exp.batch_size,
                             exp.seed) for w in range(2)]
    sizes = [len(s.next_batch()) for s in samplers]
    assert sizes[0] != sizes[1], "shards must be unequal for this lesson"
    model = build_model(exp.model, data.info, exp.hidden, exp.seed)
    grads = []
    for s in samplers:
        idx = torch.from_numpy(s.next_batch())
        model.zero_grad()
        nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx]).backward()
        grads.append(nn.utils.parameters_to_vector(p.grad for p in model.parameters()))
    weighted = (sizes[0] * grads[0] + sizes[1] * grads[1]) / sum(sizes)
    unweighted = (grads[0] + grads[1]) / 2
    assert (weighted - unweighted).abs().max() > 1e-4


def test_sync_is_bitwise_reproducible() -> None:
    exp = experiment("sync", 3, "adam")
    a, b = ddlkit.run(exp), ddlkit.run(exp)
    assert a.final_params.tobytes() == b.final_params.tobytes()
    assert [r["test_loss"] for r in a.history] == [r["test_loss"] for r in b.history]
