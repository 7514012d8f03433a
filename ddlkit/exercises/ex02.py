"""Checks for exercise 2, ``dirichlet_shards(labels, workers, alpha, seed)``.

Label skew is measured as the total-variation distance between each shard's label
distribution and the global one, averaged over shards weighted by their size. The
yardstick is an IID split (ddlkit's ``shard_iid``, a random permutation cut in parts).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ddlkit.data.sharding import shard_iid
from ddlkit.exercises.grading import CheckFailed, Exercise, Learner

EXERCISE = Exercise(2, "ex02_dirichlet_shards", "Dirichlet(α) label-skew sharding")

CLASSES, PER_CLASS, WORKERS = 10, 100, 5
SEEDS = (0, 1, 2)
SMALL_ALPHA, LARGE_ALPHA = 0.1, 1000.0
#: small α must skew at least this much, and at least SKEW_FACTOR × an IID split
MIN_SKEW, SKEW_FACTOR = 0.3, 3.0
#: large α may skew at most NEAR_IID_FACTOR × an IID split
NEAR_IID_FACTOR = 1.5


def make_labels() -> np.ndarray:
    """1000 labels, 100 of each of 10 classes, in a fixed random order."""
    return np.random.default_rng(7).permutation(np.repeat(np.arange(CLASSES), PER_CLASS))


def label_skew(labels: np.ndarray, shards: list[np.ndarray]) -> float:
    """Size-weighted mean total-variation distance of shard label mixes from the global mix."""
    overall = np.bincount(labels, minlength=CLASSES) / labels.size
    total = 0.0
    for shard in shards:
        if shard.size:
            mix = np.bincount(labels[shard], minlength=CLASSES) / shard.size
            total += shard.size * 0.5 * float(np.abs(mix - overall).sum())
    return total / labels.size


def iid_skew(labels: np.ndarray) -> float:
    return float(np.mean([label_skew(labels, shard_iid(labels.size, WORKERS, s))
                          for s in SEEDS]))


def _shards(learner: Learner, labels: np.ndarray, alpha: float, seed: int) -> list[np.ndarray]:
    """Call the learner's function on a copy of ``labels``; check the result's form."""
    call = f"dirichlet_shards(labels, workers={WORKERS}, alpha={alpha:g}, seed={seed})"
    out: Any = learner.module().dirichlet_shards(labels.copy(), WORKERS, alpha, seed)
    if not isinstance(out, (list, tuple)) or len(out) != WORKERS:
        size = len(out) if isinstance(out, (list, tuple)) else type(out).__name__
        raise CheckFailed(f"{call} returned {size}; expected a list of {WORKERS} arrays")
    shards = []
    for k, shard in enumerate(out):
        arr = np.asarray(shard)
        if arr.size and (arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer)):
            raise CheckFailed(f"{call}: shard {k} has shape {arr.shape} and dtype {arr.dtype}; "
                              "expected a 1-D array of integer sample indices")
        shards.append(arr.astype(np.int64).reshape(-1))
    return shards


@EXERCISE.check(f"every sample is in exactly one shard ({CLASSES} classes, "
                f"{CLASSES * PER_CLASS} samples, {WORKERS} workers)")
def partition(learner: Learner) -> None:
    labels = make_labels()
    for alpha in (SMALL_ALPHA, 1.0, LARGE_ALPHA):
        shards = _shards(learner, labels, alpha, 0)
        every = np.concatenate(shards)
        where = f"with alpha={alpha:g}"
        outside = every[(every < 0) | (every >= labels.size)]
        if outside.size:
            raise CheckFailed(f"{where}: index {int(outside[0])} is not a sample (there are "
                              f"{labels.size}, numbered from 0)")
        counts = np.bincount(every, minlength=labels.size)
        if (counts > 1).any():
            i = int(np.argmax(counts > 1))
            raise CheckFailed(f"{where}: sample {i} is in {counts[i]} shards")
        if (counts == 0).any():
            raise CheckFailed(f"{where}: {int((counts == 0).sum())} samples are in no shard "
                              f"(the first is sample {int(np.argmax(counts == 0))})")


@EXERCISE.check(f"small α = {SMALL_ALPHA:g} skews the label mix far more than an IID split")
def small_alpha_skews(learner: Learner) -> None:
    labels = make_labels()
    skew = float(np.mean([label_skew(labels, _shards(learner, labels, SMALL_ALPHA, s))
                          for s in SEEDS]))
    iid = iid_skew(labels)
    need = max(MIN_SKEW, SKEW_FACTOR * iid)
    if skew < need:
        raise CheckFailed(f"with alpha={SMALL_ALPHA:g} the shards' label mix is only {skew:.2f} "
                          f"from the global one (total variation; an IID split gives {iid:.2f}); "
                          f"expected at least {need:.2f}: does each class's split use "
                          "rng.dirichlet with your alpha?")


@EXERCISE.check(f"large α = {LARGE_ALPHA:g} is close to an IID split")
def large_alpha_near_iid(learner: Learner) -> None:
    labels = make_labels()
    skew = float(np.mean([label_skew(labels, _shards(learner, labels, LARGE_ALPHA, s))
                          for s in SEEDS]))
    iid = iid_skew(labels)
    if skew > NEAR_IID_FACTOR * iid:
        raise CheckFailed(f"with alpha={LARGE_ALPHA:g} the shards' label mix is {skew:.2f} from "
                          f"the global one (total variation); an IID split gives {iid:.2f}: a "
                          "large alpha should give every worker about 1/N of each class")


@EXERCISE.check("the same seed gives the same shards; another seed, different ones")
def deterministic(learner: Learner) -> None:
    labels = make_labels()
    first, again = (_shards(learner, labels, 0.5, 3) for _ in range(2))
    if any(not np.array_equal(np.sort(a), np.sort(b)) for a, b in zip(first, again)):
        raise CheckFailed("two calls with seed=3 gave different shards: take all randomness "
                          "from np.random.default_rng(seed), not from global state")
    other = _shards(learner, labels, 0.5, 4)
    if all(np.array_equal(np.sort(a), np.sort(b)) for a, b in zip(first, other)):
        raise CheckFailed("seed=3 and seed=4 gave identical shards: the split should depend "
                          "on the seed")
