"""Sampling: which sample indices a worker uses at each of its steps.

Two mechanisms from the source article:

- *local*: a worker owns a fixed shard (``sharding.py``) and walks a fresh seeded permutation of
  it every epoch (``ShardSampler``);
- *stream*: all workers draw consecutive chunks from one shared, ordered stream of samples
  (``StreamSampler``).

Samplers are deterministic: two samplers built with the same arguments yield the same batches,
so a run can be replayed exactly, whatever order the worker processes happen to run in.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from ddlkit.data.sharding import SCHEMES, apportion


class Sampler(Protocol):
    """Anything that hands a worker its next batch of sample indices."""

    batch_size: int

    def next_batch(self) -> np.ndarray: ...


def worker_batch_sizes(shard_sizes: Sequence[int], batch_size: int,
                       weights: Sequence[float] | None = None) -> list[int]:
    """Split the global batch B = batch_size × workers across workers in proportion to shard size.

    Largest-remainder rounding makes the sizes sum to B whenever workers <= B <= sum(shard_sizes);
    each size is at least 1 and at most its shard size. With unequal shards the batches are
    unequal, so a server must average gradients weighted by sample count, g = Σ_k (b_k / B)·g_k:
    the plain mean (1/W)·Σ_k g_k of the source article is then no longer the gradient of the
    global batch, and it over-weights the small shards.

    ``weights`` (one number > 0 per worker) splits B in proportion to them instead, e.g. to
    worker speed (``batch_split="speed"``, :func:`ddlkit.train.delays.speed_weights`); each size
    still lies in [1, shard size], and the weighted average above stays the union batch's
    gradient.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: {batch_size} is not allowed; it must be >= 1")
    if len(shard_sizes) == 0 or min(shard_sizes) < 1:
        raise ValueError(f"shard_sizes: {list(shard_sizes)} is not allowed; give one size >= 1 "
                         "per worker")
    workers = len(shard_sizes)
    if weights is not None and len(weights) != workers:
        raise ValueError(f"weights: {list(weights)} is not allowed; give one per worker "
                         f"({workers})")
    return apportion(batch_size * workers, shard_sizes if weights is None else weights,
                     lower=[1] * workers, upper=shard_sizes)


class ShardSampler:
    """Batches from one worker's fixed shard, a new seeded permutation every epoch.

    Epoch e visits the shard in the order of ``default_rng([seed, worker, e]).permutation``. A
    batch that would cross the end of an epoch takes the epoch's remaining indices and continues
    with the next epoch's permutation, so every batch has exactly ``batch_size`` indices.
    """

    def __init__(self, shard: np.ndarray, batch_size: int, seed: int, worker: int) -> None:
        shard = np.asarray(shard, dtype=np.int64)
        if shard.ndim != 1 or shard.size == 0:
            raise ValueError(f"shard: got shape {shard.shape}; allowed: a non-empty 1-D array "
                             "of sample indices")
        if not 1 <= batch_size <= shard.size:
            raise ValueError(f"batch_size: {batch_size} is not allowed for a shard of "
                             f"{shard.size} samples; it must lie in [1, {shard.size}]")
        _check_seed_and_worker(seed, worker)
        self.shard = shard
        self.batch_size = batch_size
        self.seed = seed
        self.worker = worker
        self.epoch = 0
        self._order = self._epoch_order(0)
        self._position = 0  # next unused place in self._order

    def _epoch_order(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.worker, epoch])
        return self.shard[rng.permutation(self.shard.size)]

    def next_batch(self) -> np.ndarray:
        """The next ``batch_size`` sample indices of this worker's shard."""
        pieces = []
        needed = self.batch_size
        while needed > 0:
            if self._position == self._order.size:
                self.epoch += 1
                self._order = self._epoch_order(self.epoch)
                self._position = 0
            piece = self._order[self._position : self._position + needed]
            self._position += piece.size
            needed -= piece.size
            pieces.append(piece)
        return np.concatenate(pieces)


class StreamSampler:
    """The *stream* mechanism: workers take consecutive chunks of one shared sample stream.

    The stream is pass 0, pass 1, … where pass p is ``default_rng([seed, p]).permutation(n)``.
    Cut into chunks of ``batch_size``, chunk c goes to worker c mod workers: worker i's k-th draw
    is chunk k·workers + i. This interleaved striping is a deterministic stand-in for "the next
    chunk goes to whoever asks first", which would make results depend on process timing.
    """

    def __init__(self, n: int, workers: int, worker: int, batch_size: int, seed: int) -> None:
        if n < 1:
            raise ValueError(f"n: {n} is not allowed; the stream needs n >= 1 samples")
        if workers < 1 or not 0 <= worker < workers:
            raise ValueError(f"worker: {worker} of workers = {workers} is not allowed; need "
                             "workers >= 1 and 0 <= worker < workers")
        if batch_size < 1:
            raise ValueError(f"batch_size: {batch_size} is not allowed; it must be >= 1")
        _check_seed_and_worker(seed, worker)
        self.n = n
        self.workers = workers
        self.worker = worker
        self.batch_size = batch_size
        self.seed = seed
        self.draws = 0  # batches handed out so far
        self._cached_pass: tuple[int, np.ndarray] | None = None

    def _pass_order(self, pass_index: int) -> np.ndarray:
        if self._cached_pass is None or self._cached_pass[0] != pass_index:
            order = np.random.default_rng([self.seed, pass_index]).permutation(self.n)
            self._cached_pass = (pass_index, order)
        return self._cached_pass[1]

    def next_batch(self) -> np.ndarray:
        """Chunk ``draws·workers + worker`` of the stream: ``batch_size`` sample indices."""
        chunk = self.draws * self.workers + self.worker
        self.draws += 1
        start = chunk * self.batch_size
        positions = np.arange(start, start + self.batch_size)
        batch = np.empty(self.batch_size, dtype=np.int64)
        for pass_index in np.unique(positions // self.n):
            in_pass = positions // self.n == pass_index
            batch[in_pass] = self._pass_order(int(pass_index))[positions[in_pass] % self.n]
        return batch


def make_sampler(
    scheme: str,
    shards: Sequence[np.ndarray] | None,
    n: int,
    workers: int,
    worker: int,
    batch_size: int,
    seed: int,
    weights: Sequence[float] | None = None,
) -> ShardSampler | StreamSampler:
    """The sampler of ``worker`` under ``scheme``.

    Fixed shards: a ``ShardSampler`` whose batch size is this worker's share of the global batch
    (``worker_batch_sizes``, by shard size or by ``weights``). Stream: a ``StreamSampler`` with
    ``batch_size`` for every worker (``weights`` must be None).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme: unknown sharding scheme {scheme!r}; allowed: {list(SCHEMES)}")
    if scheme == "stream":
        if weights is not None:
            raise ValueError("weights: the stream hands every worker batch_size samples; "
                             "split batches by weight only with fixed shards")
        return StreamSampler(n, workers, worker, batch_size, seed)
    if shards is None or len(shards) != workers:
        got = "None" if shards is None else f"{len(shards)} shards"
        raise ValueError(f"shards: scheme {scheme!r} needs one shard per worker ({workers}); "
                         f"got {got}")
    if not 0 <= worker < workers:
        raise ValueError(f"worker: {worker} is not allowed; it must lie in [0, {workers})")
    sizes = worker_batch_sizes([len(shard) for shard in shards], batch_size, weights)
    return ShardSampler(shards[worker], sizes[worker], seed, worker)


def _check_seed_and_worker(seed: int, worker: int) -> None:
    if seed < 0:
        raise ValueError(f"seed: {seed} is not allowed; it must be an integer >= 0")
    if worker < 0:
        raise ValueError(f"worker: {worker} is not allowed; it must be an integer >= 0")
