"""Gradient aggregation: why the server must weight each worker's gradient by its batch size.

Worker k computes g_k, the *mean* gradient over its own batch of b_k samples. The gradient
of the mean loss over the union of all batches (the large batch, B = Σ_k b_k samples) is

    g = Σ_k (b_k / B) · g_k,

the sample-weighted average. The unweighted average (1/N) Σ_k g_k gives each of the N
workers the same say however few samples it used, so it equals g only when every b_k is
the same. The source article's aggregation formula, ∇θ = (1/N) Σ_{i=1}^{M} ∇θ_i (§4.1),
is that unweighted average, and it also sums to M, its symbol for the number of
parameters, while dividing by N, the number of workers.

:func:`compare_aggregates` takes an Experiment, draws each worker's first batch exactly as
the worker would, and returns both averages next to the true large-batch gradient.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import torch

from ddlkit.config import Experiment
from ddlkit.data import load_dataset, make_sampler, make_shards
from ddlkit.strategies.common import weighted_mean_into
from ddlkit.train.delays import speed_weights
from ddlkit.train.models import build_model, loss_fn


@dataclass(frozen=True)
class AggregationReport:
    """Per-worker gradients of one step and three ways to combine them (float64).

    ``worker_gradients`` is [workers, parameters]; ``large_batch`` is the gradient of one
    backward pass over the union of the batches, the reference; ``weighted`` is what the
    kit's server computes (``weighted_mean_into``); ``unweighted`` is the plain mean.
    """

    label: str
    shard_sizes: tuple[int, ...] | None
    batch_sizes: tuple[int, ...]
    worker_gradients: np.ndarray
    large_batch: np.ndarray
    weighted: np.ndarray
    unweighted: np.ndarray

    @property
    def global_batch(self) -> int:
        """B, the number of samples in the union of the batches."""
        return sum(self.batch_sizes)

    @property
    def weighted_error(self) -> float:
        """Relative error of the weighted average: ‖weighted − g‖ / ‖g‖."""
        return _relative_error(self.weighted, self.large_batch)

    @property
    def unweighted_error(self) -> float:
        """Relative error of the unweighted average: ‖unweighted − g‖ / ‖g‖."""
        return _relative_error(self.unweighted, self.large_batch)

    def __str__(self) -> str:
        sizes = self.shard_sizes or (None,) * len(self.batch_sizes)
        lines = [f"{self.label}: one step, global batch B = {self.global_batch}",
                 f"{'worker':>6} {'shard':>7} {'batch b_k':>9} {'weight b_k/B':>12} {'1/N':>6}"]
        n = len(self.batch_sizes)
        for k, (s, b) in enumerate(zip(sizes, self.batch_sizes)):
            shard = "stream" if s is None else str(s)
            lines.append(f"{k + 1:>6} {shard:>7} {b:>9} {b / self.global_batch:>12.3f} "
                         f"{1 / n:>6.3f}")
        lines.append(f"relative error against the large-batch gradient: weighted "
                     f"{self.weighted_error:.1e}, unweighted {self.unweighted_error:.1%}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        sizes = self.shard_sizes or (None,) * len(self.batch_sizes)
        n = len(self.batch_sizes)
        head = "".join(f"<th>{h}</th>" for h in ("worker", "shard size", "batch b<sub>k</sub>",
                                                 "weight b<sub>k</sub>/B", "weight 1/N"))
        rows = "".join(
            f"<tr><td>{k + 1}</td><td>{'stream' if s is None else s}</td><td>{b}</td>"
            f"<td>{b / self.global_batch:.3f}</td><td>{1 / n:.3f}</td></tr>"
            for k, (s, b) in enumerate(zip(sizes, self.batch_sizes)))
        return (f"<table><caption>{html.escape(self.label)}: one step, global batch "
                f"B = {self.global_batch}</caption><tr>{head}</tr>{rows}</table>"
                f"<p>relative error against the large-batch gradient: "
                f"<b>weighted {self.weighted_error:.1e}</b>, "
                f"<b>unweighted {self.unweighted_error:.1%}</b></p>")


def compare_aggregates(exp: Experiment) -> AggregationReport:
    """Gradients of step 1 of ``exp``, combined with and without weights by batch size.

    Shards, batch sizes, batches and the initial model are built exactly as the workers
    build them (same seeds), but in float64 whatever ``exp.dtype`` says, so rounding can
    neither hide nor fake a difference.
    """
    dtype = torch.float64
    data = load_dataset(exp.dataset, dtype=dtype)
    info = data.info
    labels = data.y_train.numpy() if info.is_classification else None
    shards = make_shards(exp.sharding, labels, info.n_train, exp.workers, seed=exp.seed,
                         dirichlet_alpha=exp.dirichlet_alpha,
                         classes_per_worker=exp.classes_per_worker, size_ratio=exp.size_ratio)
    samplers = [make_sampler(exp.sharding, shards, info.n_train, exp.workers, k,
                             exp.batch_size, exp.seed, weights=speed_weights(exp))
                for k in range(exp.workers)]
    batches = [torch.from_numpy(np.asarray(s.next_batch(), dtype=np.int64)) for s in samplers]
    model = build_model(exp.model, info, exp.hidden, exp.seed, dtype)
    params = list(model.parameters())

    def gradient(idx: torch.Tensor) -> torch.Tensor:
        loss = loss_fn(info, model(data.x_train[idx]), data.y_train[idx])
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])

    grads = [gradient(idx) for idx in batches]
    counts = [float(idx.numel()) for idx in batches]
    weighted = torch.empty_like(grads[0])
    weighted_mean_into(weighted, grads, counts)
    return AggregationReport(
        label=exp.label().split(" · ", 1)[1],
        shard_sizes=None if shards is None else tuple(len(s) for s in shards),
        batch_sizes=tuple(int(c) for c in counts),
        worker_gradients=torch.stack(grads).numpy(),
        large_batch=gradient(torch.cat(batches)).numpy(),
        weighted=weighted.numpy(),
        unweighted=torch.stack(grads).mean(dim=0).numpy())


def _relative_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    return float(np.linalg.norm(estimate - truth) / np.linalg.norm(truth))
