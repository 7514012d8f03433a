"""Weighted against unweighted gradient aggregation, checked against independent references.

The large-batch gradient is recovered from one step of the trusted reference
(:func:`ddlkit.analysis.reference.large_batch_sgd`, plain torch.optim.SGD): g = (θ₀ − θ₁) / lr.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import ddlkit
from ddlkit.analysis.reference import large_batch_sgd
from ddlkit.data import DATASETS, worker_batch_sizes
from ddlkit.lessons.sharing_data import compare_aggregates
from ddlkit.train.models import build_model


def experiment(**kw: object) -> ddlkit.Experiment:
    base = dict(mode="sync", workers=4, dataset="digits", model="mlp", hidden=16,
                sharding="unbalanced", size_ratio=8.0, batch_size=16, seed=2)
    base.update(kw)
    return ddlkit.Experiment(**base)  # type: ignore[arg-type]


def reference_gradient(exp: ddlkit.Experiment) -> np.ndarray:
    """One SGD step of the single-process reference, turned back into its gradient."""
    exp = exp.replace(steps=1, dtype="float64", optimizer="sgd", lr=1.0)
    model = build_model(exp.model, DATASETS[exp.dataset], exp.hidden, exp.seed, torch.float64)
    theta0 = nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    return theta0 - large_batch_sgd(exp)


@pytest.mark.parametrize("kw", [
    {},
    {"sharding": "dirichlet", "dirichlet_alpha": 0.3},
    {"sharding": "label-skew", "classes_per_worker": 2, "workers": 3},
    {"dataset": "linreg", "model": "linear", "workers": 5},
])
def test_large_batch_gradient_matches_the_reference(kw: dict) -> None:
    exp = experiment(**kw)
    report = compare_aggregates(exp)
    np.testing.assert_allclose(report.large_batch, reference_gradient(exp), rtol=1e-9,
                               atol=1e-12)
    assert report.weighted_error < 1e-12


def test_unequal_shards_make_the_unweighted_average_wrong() -> None:
    exp = experiment()
    report = compare_aggregates(exp)
    assert len(set(report.batch_sizes)) > 1
    assert report.weighted_error < 1e-12
    assert report.unweighted_error > 0.05
    np.testing.assert_allclose(report.unweighted, report.worker_gradients.mean(axis=0))


def test_batch_sizes_follow_the_shards() -> None:
    exp = experiment(workers=3, size_ratio=4.0)
    report = compare_aggregates(exp)
    assert report.shard_sizes is not None and sum(report.shard_sizes) == DATASETS["digits"].n_train
    assert report.batch_sizes == tuple(worker_batch_sizes(report.shard_sizes, exp.batch_size))
    assert report.global_batch == exp.batch_size * exp.workers
    weights = np.array(report.batch_sizes) / report.global_batch
    np.testing.assert_allclose(report.weighted, weights @ report.worker_gradients, rtol=1e-12,
                               atol=1e-15)


def test_equal_batches_make_both_averages_agree() -> None:
    exp = experiment(sharding="iid", workers=3)  # 1347 = 3 × 449: equal shards and batches
    report = compare_aggregates(exp)
    assert len(set(report.batch_sizes)) == 1
    assert report.unweighted_error < 1e-12


def test_stream_has_no_shards_and_equal_batches() -> None:
    report = compare_aggregates(experiment(sharding="stream"))
    assert report.shard_sizes is None
    assert report.batch_sizes == (16, 16, 16, 16)
    assert "stream" in str(report)


def test_report_shows_the_numbers() -> None:
    report = compare_aggregates(experiment())
    text = str(report)
    assert "unbalanced ×8" in text and "weighted" in text and "unweighted" in text
    for b in report.batch_sizes:
        assert f" {b} " in text
    assert "<table>" in report._repr_html_()
