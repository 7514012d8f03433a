"""An asynchronous parameter server written with Ray actors: the baseline for ``async``.

The pattern of Ray's own parameter-server example: one actor holds the model and applies
each gradient the moment it arrives, returning the current parameters to that worker
alone; each worker actor loops "compute a gradient on my parameters, send it, take the
reply". Same model (ddlkit's digits MLP), same batch and learning rate as ddlkit's
``async`` mode, one compute thread per process. Ray is an optional extra
(``pip install -e '.[bench]'``); importing this module does not import it.
"""
from __future__ import annotations

import os
import time
from typing import Any

import numpy as np


class _Model:
    """ddlkit's MLP on digits, with its parameters as one flat float32 vector."""

    def __init__(self, hidden: int, seed: int) -> None:
        import torch

        from ddlkit.data import load_dataset
        from ddlkit.train.models import build_model

        torch.set_num_threads(1)
        self.torch = torch
        self.data = load_dataset("digits")
        self.module = build_model("mlp", self.data.info, hidden, seed)
        self.params = list(self.module.parameters())

    def get_flat(self) -> np.ndarray:
        return self.torch.cat([p.detach().reshape(-1) for p in self.params]).numpy()

    def set_flat(self, flat: np.ndarray) -> None:
        self.torch.nn.utils.vector_to_parameters(self.torch.from_numpy(flat), self.params)


class ParameterServer(_Model):
    """Applies each gradient on arrival (plain SGD) and answers with the new parameters."""

    def __init__(self, hidden: int, seed: int, lr: float) -> None:
        super().__init__(hidden, seed)
        self.lr = lr
        self.flat = self.get_flat().copy()
        self.times: list[float] = []

    def parameters(self) -> np.ndarray:
        return self.flat

    def apply(self, grad: np.ndarray) -> np.ndarray:
        self.flat -= self.lr * grad
        self.times.append(time.perf_counter())
        return self.flat

    def update_times(self) -> list[float]:
        return self.times


class Worker(_Model):
    """Draws batches at random and computes mean gradients of the cross-entropy loss."""

    def __init__(self, hidden: int, seed: int, index: int, batch_size: int) -> None:
        super().__init__(hidden, seed)
        self.batch_size = batch_size
        self.gen = self.torch.Generator().manual_seed(seed + 1 + index)

    def ready(self) -> int:
        return os.getpid()

    def train(self, server: Any, updates: int) -> int:
        import ray

        from ddlkit.train.models import loss_fn

        torch, info = self.torch, self.data.info
        flat = ray.get(server.parameters.remote())
        for _ in range(updates):
            self.set_flat(flat)
            idx = torch.randint(0, info.n_train, (self.batch_size,), generator=self.gen)
            loss = loss_fn(info, self.module(self.data.x_train[idx]), self.data.y_train[idx])
            grads = torch.autograd.grad(loss, self.params)
            grad = torch.cat([g.reshape(-1) for g in grads]).numpy()
            flat = ray.get(server.apply.remote(grad))
        return updates


def available() -> str | None:
    """None if Ray can be used, else why not (for the results table)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "ray not installed"
    return None


class RayParameterServer:
    """One Ray server actor and ``workers`` worker actors, started once, measured repeatedly.

    ``ray.init`` must have been called. Use as a context manager: the actors are killed
    at the end.
    """

    def __init__(self, workers: int, *, hidden: int = 64, batch_size: int = 32,
                 lr: float = 0.1, seed: int = 0) -> None:
        import ray

        opts = {"num_cpus": 0, "runtime_env": {"env_vars": {"OMP_NUM_THREADS": "1"}}}
        self.workers = workers
        self.server = ray.remote(**opts)(ParameterServer).remote(hidden, seed, lr)
        self.pool = [ray.remote(**opts)(Worker).remote(hidden, seed, i, batch_size)
                     for i in range(workers)]
        # Wait until every actor has imported torch and built its model.
        ray.get([w.ready.remote() for w in self.pool] + [self.server.parameters.remote()])

    def __enter__(self) -> RayParameterServer:
        return self

    def __exit__(self, *exc: object) -> None:
        import ray

        for actor in [self.server, *self.pool]:
            ray.kill(actor)

    def updates_per_s(self, updates_per_worker: int, warmup: int) -> float:
        """Steady server updates per second over one round of training.

        Every worker makes ``warmup + updates_per_worker`` updates; the rate is taken
        between the server's ``warmup × workers``-th update of the round and its last.
        """
        import ray

        done = len(ray.get(self.server.update_times.remote()))
        ray.get([w.train.remote(self.server, warmup + updates_per_worker) for w in self.pool])
        times = ray.get(self.server.update_times.remote())[done:]
        first = warmup * self.workers
        return (len(times) - 1 - first) / (times[-1] - times[first])
