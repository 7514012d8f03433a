"""Sharding: which training samples each worker may use.

The source article names three data-sharing mechanisms: *global* (every worker may read all
data), *local* (each worker owns a fixed shard) and *stream* (samples arrive in one ordered
stream and go to whichever worker asks next). A fixed shard is the local mechanism; the schemes
below make shards that are IID or deliberately non-IID, the setting of federated learning:

- ``iid``: a random permutation cut into near-equal parts.
- ``label-skew``: each worker holds only a few classes (McMahan et al. 2017, §3, "pathological
  non-IID" partition).
- ``dirichlet``: class proportions per worker drawn from Dirichlet(α) (Hsu et al. 2019,
  "Measuring the effects of non-identical data distribution", §3); small α, strong skew.
- ``unbalanced``: IID labels but very different shard sizes.
- ``stream``: no fixed shards; see ``sampling.StreamSampler``.

Every function is pure: its result depends only on its arguments, and randomness comes from
``np.random.default_rng(seed)``. A shard is a sorted int64 array of sample indices; the shards of
one call are disjoint, their union is every sample, and none is empty.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Sequence

import numpy as np

SCHEMES: tuple[str, ...] = ("iid", "label-skew", "dirichlet", "unbalanced", "stream")
LABEL_SCHEMES: tuple[str, ...] = ("label-skew", "dirichlet")
DIRICHLET_MAX_DRAWS = 20
"""Dirichlet draws tried before an empty shard is repaired by moving one sample into it."""


def shard_iid(n: int, workers: int, seed: int) -> list[np.ndarray]:
    """Shuffle the n sample indices and cut them into ``workers`` parts (sizes differ by ≤1)."""
    _check_counts(n, workers, seed)
    permutation = np.random.default_rng(seed).permutation(n)
    return _sorted_shards(np.array_split(permutation, workers))


def shard_label_skew(
    labels: np.ndarray, workers: int, classes_per_worker: int, seed: int
) -> list[np.ndarray]:
    """Give each worker ``classes_per_worker`` classes, and split each class among its owners.

    Ownership is dealt round-robin: shuffle the classes, then walk ``workers × classes_per_worker``
    slots, slot s going to worker ``s // classes_per_worker`` and owning class ``s mod n_classes``.
    When there are fewer slots than classes, the classes left over are dealt one at a time,
    round-robin, starting again at worker 0; those workers then hold more than
    ``classes_per_worker`` classes, but every sample still goes to exactly one worker.
    A class's samples are shuffled and split near-equally among its owners. A worker left with no
    sample (its classes had fewer samples than owners) gets the last index of the largest shard.
    """
    labels = _check_labels(labels, workers, seed)
    classes = np.unique(labels)
    if not 1 <= classes_per_worker <= classes.size:
        raise ValueError(f"classes_per_worker: {classes_per_worker} is not allowed; it must lie "
                         f"in [1, {classes.size}] (the number of classes in the labels)")
    rng = np.random.default_rng(seed)
    dealt = rng.permutation(classes)
    owners: dict[int, list[int]] = {int(c): [] for c in classes}
    slots = workers * classes_per_worker
    for slot in range(max(slots, classes.size)):
        worker = slot // classes_per_worker if slot < slots else (slot - slots) % workers
        owners[int(dealt[slot % classes.size])].append(worker)
    parts: list[list[np.ndarray]] = [[] for _ in range(workers)]
    for class_id in sorted(owners):
        members = rng.permutation(np.flatnonzero(labels == class_id))
        for worker, part in zip(owners[class_id], np.array_split(members, len(owners[class_id]))):
            parts[worker].append(part)
    return _fill_empty_shards(_sorted_shards([np.concatenate(p) for p in parts]))


def shard_dirichlet(labels: np.ndarray, workers: int, alpha: float, seed: int) -> list[np.ndarray]:
    """Split each class among workers in proportions p ~ Dirichlet(α·1) (Hsu et al. 2019, §3).

    Class c with n_c samples gives worker k the slice between ⌊n_c·(p_1+…+p_{k-1})⌋ and
    ⌊n_c·(p_1+…+p_k)⌋ of its shuffled samples. If a draw leaves a worker with no sample, the
    whole draw is repeated (up to ``DIRICHLET_MAX_DRAWS`` times); if that never succeeds, one
    sample is moved into each empty shard from the largest shard.
    """
    labels = _check_labels(labels, workers, seed)
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha: {alpha!r} is not allowed; it must be a finite number > 0")
    rng = np.random.default_rng(seed)
    for _ in range(DIRICHLET_MAX_DRAWS):
        parts: list[list[np.ndarray]] = [[] for _ in range(workers)]
        for class_id in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == class_id))
            proportions = rng.dirichlet(np.full(workers, float(alpha)))
            cuts = (np.cumsum(proportions)[:-1] * members.size).astype(np.int64)
            for worker, part in enumerate(np.split(members, cuts)):
                parts[worker].append(part)
        shards = _sorted_shards([np.concatenate(p) for p in parts])
        if all(shard.size > 0 for shard in shards):
            return shards
    return _fill_empty_shards(shards)


def shard_unbalanced(n: int, workers: int, size_ratio: float, seed: int) -> list[np.ndarray]:
    """IID shards whose sizes are geometrically spaced so that largest / smallest ≈ size_ratio.

    Worker sizes are proportional to size_ratio^(k/(workers−1)), k = 0…workers−1, rounded by
    ``apportion`` (each ≥1), and dealt to the workers in a seeded random order.
    """
    _check_counts(n, workers, seed)
    if not (np.isfinite(size_ratio) and size_ratio >= 1):
        raise ValueError(f"size_ratio: {size_ratio!r} is not allowed; it must be a finite "
                         "number >= 1")
    rng = np.random.default_rng(seed)
    exponents = np.arange(workers) / max(workers - 1, 1)
    weights = list(float(size_ratio) ** exponents)
    sizes = np.array(apportion(n, weights, lower=[1] * workers, upper=[n] * workers))
    sizes = sizes[rng.permutation(workers)]
    permutation = rng.permutation(n)
    return _sorted_shards(np.split(permutation, np.cumsum(sizes)[:-1]))


def make_shards(
    scheme: str,
    labels: np.ndarray | None,
    n: int,
    workers: int,
    *,
    seed: int,
    dirichlet_alpha: float = 0.5,
    classes_per_worker: int = 2,
    size_ratio: float = 4.0,
) -> list[np.ndarray] | None:
    """Shard n samples for ``workers`` workers by ``scheme``; None for "stream" (no fixed shards).

    ``labels`` (int class ids, length n) are required by the label-based schemes and ignored by
    the others, so regression data may pass None.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme: unknown sharding scheme {scheme!r}; allowed: {list(SCHEMES)}")
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels: has {len(labels)} entries but n = {n}; they must agree")
    if scheme in LABEL_SCHEMES and labels is None:
        raise ValueError(f"labels: scheme {scheme!r} needs class labels, so it works only on a "
                         f"classification dataset; allowed for regression: iid, unbalanced, stream")
    if scheme == "stream":
        _check_counts(n, workers, seed)
        return None
    if scheme == "iid":
        return shard_iid(n, workers, seed)
    if scheme == "unbalanced":
        return shard_unbalanced(n, workers, size_ratio, seed)
    if scheme == "label-skew":
        return shard_label_skew(np.asarray(labels), workers, classes_per_worker, seed)
    return shard_dirichlet(np.asarray(labels), workers, dirichlet_alpha, seed)


def label_distribution(
    labels: np.ndarray, shards: Sequence[np.ndarray], n_classes: int
) -> np.ndarray:
    """Counts of each class on each worker: an int64 array of shape [workers, n_classes]."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels: values must lie in [0, {n_classes}) for n_classes = "
                         f"{n_classes}; got range [{labels.min()}, {labels.max()}]")
    return np.stack([np.bincount(labels[shard], minlength=n_classes) for shard in shards])


def apportion(total: int, weights: Sequence[float], lower: Sequence[int],
              upper: Sequence[int]) -> list[int]:
    """Split the integer ``total`` into parts proportional to ``weights``, within [lower, upper].

    Largest-remainder (Hamilton) method: start from ⌊quota⌋ clipped to the bounds, then add one
    to the parts furthest below their quota (or take one from those furthest above) until the
    parts sum to ``total``. Exact rational arithmetic, so ties and rounding are reproducible.
    If ``total`` is outside [sum(lower), sum(upper)], the nearest feasible split is returned.
    """
    if len(weights) == 0 or min(weights) <= 0:
        raise ValueError(f"weights: {list(weights)} is not allowed; give one or more numbers > 0")
    if not len(lower) == len(upper) == len(weights) or any(lo > hi for lo, hi in zip(lower, upper)):
        raise ValueError(f"lower, upper: {list(lower)}, {list(upper)} are not allowed; give one "
                         "bound of each per weight, with lower <= upper")
    exact = [Fraction(w) for w in weights]
    weight_sum = sum(exact)
    quotas = [total * w / weight_sum for w in exact]
    parts = [min(max(int(q), lo), hi) for q, lo, hi in zip(quotas, lower, upper)]
    target = min(max(total, sum(lower)), sum(upper))
    while sum(parts) < target:
        room = [i for i in range(len(parts)) if parts[i] < upper[i]]
        parts[max(room, key=lambda i: quotas[i] - parts[i])] += 1
    while sum(parts) > target:
        room = [i for i in range(len(parts)) if parts[i] > lower[i]]
        parts[max(room, key=lambda i: parts[i] - quotas[i])] -= 1
    return parts


def _fill_empty_shards(shards: list[np.ndarray]) -> list[np.ndarray]:
    """Move the last index of the largest shard into each empty shard (ties: lowest worker)."""
    shards = list(shards)
    for empty in [k for k, shard in enumerate(shards) if shard.size == 0]:
        largest = int(np.argmax([shard.size for shard in shards]))
        shards[empty] = shards[largest][-1:]
        shards[largest] = shards[largest][:-1]
    return shards


def _sorted_shards(parts: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.sort(np.asarray(part, dtype=np.int64)) for part in parts]


def _check_counts(n: int, workers: int, seed: int) -> None:
    if workers < 1:
        raise ValueError(f"workers: {workers} is not allowed; it must be >= 1")
    if n < workers:
        raise ValueError(f"n: {n} samples cannot give each of {workers} workers at least one "
                         f"sample; n must be >= workers")
    if seed < 0:
        raise ValueError(f"seed: {seed} is not allowed; it must be an integer >= 0")


def _check_labels(labels: np.ndarray, workers: int, seed: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels: got shape {labels.shape} and dtype {labels.dtype}; allowed: "
                         "a 1-D array of integer class ids")
    _check_counts(labels.size, workers, seed)
    return labels
