"""Stragglers: three ways a worker is slow, two remedies, and how to measure the damage.

A synchronous step lasts as long as its slowest gradient, so one slow worker slows
everyone (Chen et al. 2016, "Revisiting distributed synchronous SGD", arXiv:1604.00981,
§2, measured long tails of step times on real clusters). ddlkit has three straggler
models; all of them are ``time.sleep`` inside the worker's compute span, so they cost
no CPU and look like compute on the timeline:

1. **fixed**: ``Experiment.worker_delays[k]`` seconds more in every step of worker k,
   from the start (a slower machine). Spent in :meth:`ddlkit.train.trainer.Trainer.gradient_into`;
   the amount is :func:`fixed_delay`.
2. **random**: ``Experiment.random_delay_s`` > 0 adds to every step of every worker an
   exponentially distributed delay with that mean (:class:`RandomDelay`, a memoryless
   hiccup: a page fault, a noisy neighbour, a garbage collection). Each worker draws from
   its own generator seeded by (``seed``, worker), so a run's delays are reproducible.
3. **appearing mid-run**: the fault spec ``delay:R@S=SEC`` (:mod:`ddlkit.faults`) makes
   rank R slower by SEC seconds per step from step S on (a machine that becomes busy).

Remedies:

- **backup workers** (``backup_workers`` b, mode ``sync``, Chen et al. 2016 §3): the
  server steps with the first N−b gradients and drops the late ones
  (:mod:`ddlkit.strategies.sync_ps`). This cuts the tail that *random* stragglers cause.
- **speed-based batch sizes** (``batch_split="speed"``): the global batch is split in
  proportion to each worker's known speed (:func:`speed_weights`), so a slower machine
  gets less work and finishes with the others. This helps against *fixed* slowness, the
  kind a batch size can change (see :func:`fixed_delay`).

Measuring what a straggler costs, the duration of each synchronous step, is analysis:
:func:`ddlkit.analysis.metrics.step_times`: the duration of each synchronous step.
"""
from __future__ import annotations

import numpy as np

from ddlkit.config import Experiment

#: a nominal compute time per sample (seconds) for :func:`speed_weights`: the order of a
#: digits MLP's forward and backward pass on one core. Every rank must agree on the batch
#: split without talking, so the split uses this constant, not a measurement.
NOMINAL_SAMPLE_S = 20e-6
#: separates the random-delay generator's stream from the samplers' ``[seed, worker, …]``
_RANDOM_DELAY_STREAM = 0x5ED1A7


class RandomDelay:
    """Exponential delays with mean ``mean_s`` for one worker, reproducible per seed.

    The k-th delay of worker ``worker`` depends only on (``seed``, ``worker``, k). The
    exponential distribution is the memoryless model of a random hiccup; its tail is
    long enough that with N workers the slowest of N draws averages mean·(1 + 1/2 + … +
    1/N), which grows with N: the reason sync steps get slower as a cluster grows.
    """

    def __init__(self, mean_s: float, seed: int, worker: int) -> None:
        if mean_s < 0:
            raise ValueError(f"random_delay_s: {mean_s} is not allowed; it must be >= 0")
        self.mean_s = float(mean_s)
        self._rng = np.random.default_rng([seed, worker, _RANDOM_DELAY_STREAM])

    def next(self) -> float:
        """The delay (seconds) of this worker's next step; 0 when the mean is 0."""
        return float(self._rng.exponential(self.mean_s)) if self.mean_s > 0 else 0.0

    def draws(self, k: int) -> np.ndarray:
        """The next ``k`` delays at once (for plots and tests)."""
        return np.array([self.next() for _ in range(k)])


def fixed_delay(exp: Experiment, worker: int, batch: int) -> float:
    """Seconds worker ``worker`` sleeps every step under ``worker_delays``.

    With ``batch_split="shard"`` it is ``worker_delays[worker]`` per step, whatever the
    batch. With ``batch_split="speed"`` the delay models a slower *processor*: it is the
    extra time for a standard batch of ``batch_size`` samples and scales with the batch
    the worker really computes, ``worker_delays[worker] × batch / batch_size``. (A pause
    that does not depend on the work cannot be shortened by giving less work; speed-based
    splitting is for machines that are slower per sample.)
    """
    if worker < 0 or not exp.worker_delays:
        return 0.0
    delay = float(exp.worker_delays[worker])
    if exp.batch_split == "speed":
        delay *= batch / exp.batch_size
    return delay


def speed_weights(exp: Experiment) -> list[float] | None:
    """Each worker's speed in samples per second, for ``batch_split="speed"`` (else None).

    Worker k spends ``NOMINAL_SAMPLE_S + worker_delays[k] / batch_size`` seconds per
    sample (see :func:`fixed_delay`), so its speed is the inverse. Splitting the global
    batch B in proportion to speed gives every worker the same expected step time. The
    random delay is the same for every worker and does not change the split.

    The server still averages by sample count, g = Σ n_k g_k / Σ n_k, which is the
    gradient of the union batch: unbiased for IID shards. With non-IID shards the fast
    workers' data gets more weight per step, a bias that is the price of not waiting.
    """
    if exp.batch_split != "speed":
        return None
    delays = exp.worker_delays or (0.0,) * exp.workers
    return [1.0 / (NOMINAL_SAMPLE_S + d / exp.batch_size) for d in delays]


