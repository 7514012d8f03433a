"""Exercise 2: split a data set across workers with Dirichlet(α) label skew.

Real workers rarely see the same mix of classes: a phone mostly photographs its owner's
cat. Hsu et al. 2019 ("Measuring the effects of non-identical data distribution", §3)
model this by splitting every class among the workers in proportions p ~ Dirichlet(α·1):
with a small α one or two workers get most of a class; with a large α every worker gets
about 1/N of it, and the shards look like a random (IID) split.
"""
from __future__ import annotations

import numpy as np


def dirichlet_shards(labels: np.ndarray, workers: int, alpha: float,
                     seed: int) -> list[np.ndarray]:
    """Split sample indices ``0 … len(labels)-1`` among ``workers`` shards, class by class.

    For each class, draw proportions from Dirichlet(alpha, …, alpha) (one per worker) and
    give each worker that share of the class's samples. Every sample goes to exactly one
    shard (a shard may be empty). The result depends only on the arguments: take all
    randomness from ``np.random.default_rng(seed)``. Returns one integer array per worker.
    """
    # HINT: rng = np.random.default_rng(seed). For each class, shuffle its sample indices
    #   (np.flatnonzero(labels == c)), draw p = rng.dirichlet([alpha] * workers), and cut
    #   them with np.split at (np.cumsum(p)[:-1] * count).astype(int). Worker k's shard is
    #   np.concatenate of its pieces from every class.
    raise NotImplementedError("Exercise 2: implement dirichlet_shards()")
