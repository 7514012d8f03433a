"""What one rank needs to train: its model, its data, its batches, its optimiser."""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from ddlkit.config import DTYPES, Experiment
from ddlkit.data import load_dataset, make_sampler, make_shards
from ddlkit.train.delays import RandomDelay, fixed_delay, speed_weights
from ddlkit.train.models import FlatModel, batch_loss, build_model
from ddlkit.train.optim import FlatOptimizer


class Trainer:
    """Local training state for one rank of an experiment.

    A worker (``worker_index >= 0``) draws batches from its shard or from the stream; the
    server or evaluator (``worker_index = -1``) only evaluates and applies updates.
    ``extra`` reserves header room after the parameters (see :class:`FlatModel`).
    """

    def __init__(self, exp: Experiment, worker_index: int, extra: int = 0) -> None:
        self.exp = exp
        self.data = load_dataset(exp.dataset, dtype=DTYPES[exp.dtype])
        self.info = self.data.info
        self.model = FlatModel(
            build_model(exp.model, self.info, exp.hidden, exp.seed, DTYPES[exp.dtype]), extra)
        self.sampler = None
        if worker_index >= 0:
            labels = self.data.y_train.numpy() if self.info.is_classification else None
            shards = make_shards(exp.sharding, labels, self.info.n_train, exp.workers,
                                 seed=exp.seed, dirichlet_alpha=exp.dirichlet_alpha,
                                 classes_per_worker=exp.classes_per_worker,
                                 size_ratio=exp.size_ratio)
            self.sampler = make_sampler(exp.sharding, shards, self.info.n_train, exp.workers,
                                        worker_index, exp.batch_size, exp.seed,
                                        weights=speed_weights(exp))
        # the straggler models of ddlkit.train.delays: fixed (worker_delays) and random
        self.delay = fixed_delay(exp, worker_index, self.batch_size)
        self.random_delay = RandomDelay(exp.random_delay_s, exp.seed, max(worker_index, 0))

    @property
    def batch_size(self) -> int:
        """Samples per step of this worker (``batch_size`` for the server)."""
        return self.sampler.batch_size if self.sampler is not None else self.exp.batch_size

    @property
    def numel(self) -> int:
        return self.model.numel

    def optimizer(self) -> FlatOptimizer:
        """The experiment's optimiser over the flat parameters, with its LR schedule."""
        from ddlkit.train.schedule import optimizer_for
        return optimizer_for(self.exp, self.model.flat)

    def gradient_into(self, out: torch.Tensor) -> tuple[int, float]:
        """Compute the mean gradient over this worker's next batch into ``out``.

        Returns (samples in the batch, batch loss). The artificial straggler delays
        (``worker_delays`` and ``random_delay_s``, see :mod:`ddlkit.train.delays`) are spent
        here, inside the compute time.
        """
        assert self.sampler is not None, "only workers draw batches"
        idx = torch.from_numpy(np.asarray(self.sampler.next_batch(), dtype=np.int64))
        loss, _ = batch_loss(self.info, self.model.module, self.data.x_train[idx],
                             self.data.y_train[idx])
        self.model.gradient_into(loss, out)
        delay = self.delay + self.random_delay.next()
        if delay:
            time.sleep(delay)
        return int(idx.numel()), float(loss.detach())

    def evaluate(self) -> tuple[float, float | None]:
        """Test loss and accuracy (accuracy is None for regression)."""
        metrics = self.metrics()
        return metrics["test_loss"], metrics["accuracy"]

    @torch.no_grad()
    def metrics(self) -> dict[str, Any]:
        """The evaluation on the test set, as history-row entries.

        ``test_loss`` and ``accuracy`` (None for regression) for every dataset; for text,
        accuracy is the share of next characters predicted exactly, and ``bits_per_char``
        = test loss / ln 2 is added (the loss is in nats per character).
        """
        loss_t, out = batch_loss(self.info, self.model.module, self.data.x_test,
                                 self.data.y_test)
        loss = float(loss_t)
        if not self.info.is_classification:
            return {"test_loss": loss, "accuracy": None}
        target = self.data.x_test[:, 1:] if self.info.is_text else self.data.y_test
        acc = float((out.argmax(dim=-1) == target).to(torch.float64).mean())
        row: dict[str, Any] = {"test_loss": loss, "accuracy": acc}
        if self.info.is_text:
            row["bits_per_char"] = bits_per_char(loss)
        return row


def bits_per_char(test_loss: float) -> float:
    """Bits per character of a mean cross-entropy ``test_loss`` in nats per character."""
    return test_loss / math.log(2)


def batch_sizes(exp: Experiment) -> list[int]:
    """Each worker's batch size per step under ``exp``'s ``batch_split`` (worker 1 first)."""
    return [Trainer(exp, k).batch_size for k in range(exp.workers)]
