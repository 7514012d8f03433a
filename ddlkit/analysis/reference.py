"""The trusted reference: single-process large-batch SGD on the union of the batches.

Sync PS and all-reduce with N workers should produce exactly what one process gets by
training an ordinary ``nn.Module`` with ``torch.optim`` on the union of the N workers'
batches at every step (each worker's batch is drawn by the same sampler the worker
uses). Nothing here touches ddlkit's flat parameters, optimisers or communication.
Every model works the same way, the ``cnn`` and the ``rnn`` language model included (for
text, a batch's loss is the mean over all its predicted characters).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from ddlkit.config import DTYPES, Experiment
from ddlkit.data import load_dataset, make_sampler, make_shards
from ddlkit.train.delays import speed_weights
from ddlkit.train.models import batch_loss, build_model, single_threaded
from ddlkit.train.schedule import torch_schedule


def large_batch_sgd(exp: Experiment, applied: list[list[int]] | None = None,
                    dropped: list[list[int]] | None = None,
                    lr_schedule: Callable[[int], float] | None = None) -> np.ndarray:
    """Final parameters (flattened) of single-process training with the union batches.

    With backup workers the server uses only some gradients per step: pass a run's
    ``applied`` and ``dropped`` records (worker ranks per step, see
    :class:`~ddlkit.runtime.result.RunResult`). Step t then trains on the union of the batches of
    the workers applied in step t; every worker that computed a gradient for step t
    (applied or dropped) drew its next batch, as the worker did. ``lr_schedule(step)``,
    if given, sets the learning rate of each step instead of the experiment's own
    schedule. It runs on one thread, as every worker does (see
    :func:`~ddlkit.train.models.single_threaded`).
    """
    with single_threaded():
        return _train(exp, applied, dropped, lr_schedule)


def _train(exp: Experiment, applied: list[list[int]] | None,
           dropped: list[list[int]] | None,
           lr_schedule: Callable[[int], float] | None) -> np.ndarray:
    data = load_dataset(exp.dataset, dtype=DTYPES[exp.dtype])
    labels = data.y_train.numpy() if data.info.is_classification else None
    shards = make_shards(exp.sharding, labels, data.info.n_train, exp.workers, seed=exp.seed,
                         size_ratio=exp.size_ratio, dirichlet_alpha=exp.dirichlet_alpha,
                         classes_per_worker=exp.classes_per_worker)
    samplers = [make_sampler(exp.sharding, shards, data.info.n_train, exp.workers, w,
                             exp.batch_size, exp.seed, weights=speed_weights(exp))
                for w in range(exp.workers)]
    model = build_model(exp.model, data.info, exp.hidden, exp.seed, DTYPES[exp.dtype])
    params = list(model.parameters())
    if exp.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(params, lr=exp.lr)
    elif exp.optimizer == "momentum":
        opt = torch.optim.SGD(params, lr=exp.lr, momentum=exp.momentum)
    else:
        opt = torch.optim.Adam(params, lr=exp.lr)
    schedule = torch_schedule(exp, opt)
    everyone = list(range(1, exp.workers + 1))  # worker k is rank k + 1
    for step in range(exp.steps):
        if lr_schedule is not None:
            for group in opt.param_groups:
                group["lr"] = float(lr_schedule(step))
        used = everyone if applied is None else applied[step]
        drew = set(used) | set(dropped[step] if dropped is not None else ())
        batches = {r: samplers[r - 1].next_batch() for r in everyone if r in drew}
        idx = torch.from_numpy(np.concatenate([batches[r] for r in sorted(used)]))
        opt.zero_grad()
        batch_loss(data.info, model, data.x_train[idx], data.y_train[idx])[0].backward()
        opt.step()
        schedule.step()
    return nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
