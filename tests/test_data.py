"""Tests of ddlkit.data: datasets, sharding schemes and samplers.

Reference values come from independent paths: plain counting, exact fractions, numpy least
squares, and the properties that define each scheme, never from the code under test.
"""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ddlkit.data import (
    DATASETS,
    SCHEMES,
    ShardSampler,
    StreamSampler,
    label_distribution,
    load_dataset,
    make_sampler,
    make_shards,
    shard_dirichlet,
    shard_label_skew,
    shard_unbalanced,
    worker_batch_sizes,
)

FIXED_SCHEMES = [s for s in SCHEMES if s != "stream"]
SEEDS = st.integers(0, 2**32 - 1)
fast = settings(max_examples=60, deadline=None)


@st.composite
def labelled_problems(draw: st.DrawFn) -> tuple[np.ndarray, int, int]:
    """(labels, workers, seed): 2–10 classes, balanced or very unbalanced class frequencies."""
    n_classes = draw(st.sampled_from([2, 3, 5, 10]))
    workers = draw(st.integers(1, 16))
    n = draw(st.integers(workers, 300))
    rng = np.random.default_rng(draw(SEEDS))
    skewed = draw(st.booleans())
    class_freq = rng.dirichlet(np.full(n_classes, 0.3)) if skewed else None
    labels = rng.choice(n_classes, size=n, p=class_freq)
    return labels, workers, draw(SEEDS)


def assert_partition(shards: list[np.ndarray], n: int, workers: int) -> None:
    """Every index in range(n) in exactly one shard; shards sorted int64 and non-empty."""
    assert len(shards) == workers
    for shard in shards:
        assert shard.dtype == np.int64 and shard.size > 0
        assert np.all(np.diff(shard) > 0)
    np.testing.assert_array_equal(np.sort(np.concatenate(shards)), np.arange(n))


def mean_tv_distance(labels: np.ndarray, shards: list[np.ndarray], n_classes: int) -> float:
    """Mean over workers of TV(shard label distribution, global label distribution)."""
    global_dist = np.bincount(labels, minlength=n_classes) / labels.size
    tv = [
        0.5 * np.abs(np.bincount(labels[s], minlength=n_classes) / s.size - global_dist).sum()
        for s in shards
    ]
    return float(np.mean(tv))


# ---------------------------------------------------------------- sharding


@fast
@given(
    problem=labelled_problems(),
    scheme=st.sampled_from(FIXED_SCHEMES),
    alpha=st.floats(0.05, 10),
    classes_per_worker=st.integers(1, 10),
    size_ratio=st.floats(1, 20),
)
def test_fixed_schemes_partition_samples_into_nonempty_shards(
    problem, scheme, alpha, classes_per_worker, size_ratio
):
    labels, workers, seed = problem
    cpw = min(classes_per_worker, np.unique(labels).size)
    shards = make_shards(scheme, labels, labels.size, workers, seed=seed, dirichlet_alpha=alpha,
                         classes_per_worker=cpw, size_ratio=size_ratio)
    assert_partition(shards, labels.size, workers)


def test_dirichlet_with_one_sample_per_worker_still_fills_every_shard():
    labels = np.array([0] * 15 + [1])
    for seed in range(5):
        shards = shard_dirichlet(labels, workers=16, alpha=0.05, seed=seed)
        assert_partition(shards, 16, 16)


def test_stream_has_no_fixed_shards():
    assert make_shards("stream", None, 100, 4, seed=0) is None


@pytest.mark.parametrize("workers", [4, 6, 8])
def test_label_schemes_skew_digits_labels_far_more_than_iid(workers):
    labels = load_dataset("digits").y_train.numpy()

    def tv(scheme: str, alpha: float = 0.5) -> float:
        return float(np.mean([
            mean_tv_distance(labels, make_shards(scheme, labels, labels.size, workers, seed=s,
                                                 dirichlet_alpha=alpha), 10)
            for s in range(3)
        ]))

    iid = tv("iid")
    assert iid < 0.12  # sampling noise only: ~170–340 samples per shard
    assert tv("label-skew") > 0.6  # 2–3 of 10 classes per worker
    assert tv("dirichlet", alpha=0.1) > 0.45 > 4 * iid
    assert tv("dirichlet", alpha=0.1) > tv("dirichlet", alpha=1.0) > tv("dirichlet", alpha=100.0)
    assert tv("dirichlet", alpha=100.0) < 0.12  # large alpha approaches IID


@fast
@given(
    n_classes=st.sampled_from([2, 3, 5, 10]),
    workers=st.integers(1, 16),
    classes_per_worker=st.integers(1, 10),
    per_class_extra=st.integers(0, 20),
    seed=SEEDS,
)
def test_label_skew_gives_each_worker_at_most_classes_per_worker(
    n_classes, workers, classes_per_worker, per_class_extra, seed
):
    cpw = min(classes_per_worker, n_classes)
    if workers * cpw < n_classes:
        workers = math.ceil(n_classes / cpw)
    owners_per_class = math.ceil(workers * cpw / n_classes)  # enough samples for every owner
    per_class = owners_per_class + per_class_extra
    labels = np.random.default_rng(seed).permutation(np.repeat(np.arange(n_classes), per_class))
    shards = shard_label_skew(labels, workers, cpw, seed)
    assert_partition(shards, labels.size, workers)
    classes_seen = (label_distribution(labels, shards, n_classes) > 0).sum(axis=1)
    assert np.all(classes_seen <= cpw)
    assert np.all(classes_seen >= 1)


@fast
@given(workers=st.integers(1, 9), classes_per_worker=st.integers(1, 9), seed=SEEDS)
def test_label_skew_deals_leftover_classes_round_robin(workers, classes_per_worker, seed):
    n_classes = 10
    if workers * classes_per_worker >= n_classes:
        return  # covered by the test above
    labels = np.repeat(np.arange(n_classes), 7)
    shards = shard_label_skew(labels, workers, classes_per_worker, seed)
    counts = label_distribution(labels, shards, n_classes)
    assert np.all((counts > 0).sum(axis=0) == 1)  # each class lives on exactly one worker
    leftover = n_classes - workers * classes_per_worker
    expected = [classes_per_worker + len(range(w, leftover, workers)) for w in range(workers)]
    assert list((counts > 0).sum(axis=1)) == expected


@fast
@given(workers=st.integers(2, 16), size_ratio=st.floats(2, 20), seed=SEEDS)
def test_unbalanced_sizes_span_the_size_ratio(workers, size_ratio, seed):
    shards = shard_unbalanced(1000, workers, size_ratio, seed)
    assert_partition(shards, 1000, workers)
    sizes = [s.size for s in shards]
    assert 0.5 * size_ratio <= max(sizes) / min(sizes) <= 2 * size_ratio


def test_unbalanced_with_ratio_one_is_balanced():
    sizes = [s.size for s in shard_unbalanced(1003, 7, 1.0, seed=3)]
    assert max(sizes) - min(sizes) <= 1


@fast
@given(problem=labelled_problems(), scheme=st.sampled_from(FIXED_SCHEMES))
def test_shards_are_deterministic_in_seed(problem, scheme):
    labels, workers, seed = problem
    cpw = min(2, np.unique(labels).size)
    first = make_shards(scheme, labels, labels.size, workers, seed=seed, classes_per_worker=cpw)
    again = make_shards(scheme, labels, labels.size, workers, seed=seed, classes_per_worker=cpw)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("scheme", FIXED_SCHEMES)
@pytest.mark.parametrize("seeds", [(0, 1), (5, 6), (7, 1000)])
def test_different_seeds_give_different_shards(scheme, seeds):
    labels = np.random.default_rng(0).integers(0, 5, 300)
    a, b = (make_shards(scheme, labels, 300, 4, seed=s) for s in seeds)
    assert any(x.size != y.size or np.any(x != y) for x, y in zip(a, b))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(scheme="dirichlet", labels=None), "dirichlet"),
        (dict(scheme="label-skew", labels=None), "label-skew"),
        (dict(scheme="round-robin", labels=None), "round-robin"),
        (dict(scheme="iid", labels=np.zeros(7, dtype=np.int64)), "labels"),
        (dict(scheme="iid", labels=None, workers=11), "workers"),
        (dict(scheme="dirichlet", labels=np.zeros(10, int), dirichlet_alpha=0.0), "alpha"),
        (dict(scheme="unbalanced", labels=None, size_ratio=0.5), "size_ratio"),
        (dict(scheme="label-skew", labels=np.zeros(10, int), classes_per_worker=2),
         "classes_per_worker"),
    ],
)
def test_make_shards_rejects_bad_arguments_by_name(kwargs, field):
    args = dict(n=10, workers=2, seed=0) | kwargs
    with pytest.raises(ValueError, match=field):
        make_shards(args.pop("scheme"), args.pop("labels"), args.pop("n"), args.pop("workers"),
                    **args)


def test_label_distribution_counts_each_class_per_worker():
    labels = np.array([0, 2, 2, 1, 0, 2, 1])
    shards = [np.array([0, 1, 2]), np.array([3, 4, 5, 6])]
    expected = [[Counter(labels[s].tolist())[c] for c in range(4)] for s in shards]
    np.testing.assert_array_equal(label_distribution(labels, shards, 4), expected)
    assert label_distribution(labels, shards, 4).shape == (2, 4)


# ---------------------------------------------------------------- sampling


@fast
@given(
    shard_sizes=st.lists(st.integers(1, 500), min_size=1, max_size=16),
    batch_size=st.integers(1, 64),
)
def test_worker_batch_sizes_split_the_global_batch(shard_sizes, batch_size):
    sizes = worker_batch_sizes(shard_sizes, batch_size)
    total = batch_size * len(shard_sizes)
    assert all(1 <= b <= s for b, s in zip(sizes, shard_sizes, strict=True))
    if total <= sum(shard_sizes):
        assert sum(sizes) == total
    else:
        assert sizes == shard_sizes  # infeasible: every worker uses its whole shard
    quotas = [Fraction(total * s, sum(shard_sizes)) for s in shard_sizes]
    if all(1 <= math.floor(q) and math.ceil(q) <= s for q, s in zip(quotas, shard_sizes)):
        assert all(math.floor(q) <= b <= math.ceil(q) for q, b in zip(quotas, sizes))
    for i, j in zip(range(len(sizes)), range(1, len(sizes))):
        if shard_sizes[i] > shard_sizes[j]:
            assert sizes[i] >= sizes[j]


def test_worker_batch_sizes_examples():
    assert worker_batch_sizes([100, 100, 100], 8) == [8, 8, 8]
    assert worker_batch_sizes([300, 100], 8) == [12, 4]
    assert worker_batch_sizes([10, 20, 30, 1], 8) == [5, 10, 16, 1]


@fast
@given(
    shard_size=st.integers(1, 120), batch_size=st.integers(1, 120), seed=SEEDS,
    worker=st.integers(0, 15),
)
def test_shard_sampler_visits_its_shard_once_per_epoch(shard_size, batch_size, seed, worker):
    if batch_size > shard_size:
        batch_size = shard_size
    shard = np.sort(np.random.default_rng(seed).choice(1000, shard_size, replace=False))
    sampler = ShardSampler(shard, batch_size, seed, worker)
    batches = [sampler.next_batch() for _ in range(shard_size)]  # exactly batch_size epochs
    assert all(b.size == batch_size and b.dtype == np.int64 for b in batches)
    drawn = np.concatenate(batches)
    for epoch in np.split(drawn, batch_size):
        np.testing.assert_array_equal(np.sort(epoch), shard)


def test_shard_sampler_reshuffles_each_epoch_and_differs_by_worker():
    shard = np.arange(100, 160)
    first = ShardSampler(shard, 60, seed=3, worker=0)
    epoch0, epoch1 = first.next_batch(), first.next_batch()
    assert np.any(epoch0 != epoch1)
    assert np.any(ShardSampler(shard, 60, seed=3, worker=1).next_batch() != epoch0)
    again = ShardSampler(shard, 60, seed=3, worker=0)
    np.testing.assert_array_equal(again.next_batch(), epoch0)
    np.testing.assert_array_equal(again.next_batch(), epoch1)


def test_shard_sampler_rejects_batch_larger_than_shard():
    with pytest.raises(ValueError, match="batch_size"):
        ShardSampler(np.arange(5), 6, seed=0, worker=0)


@fast
@given(
    n=st.integers(1, 200), workers=st.integers(1, 8), batch_size=st.integers(1, 50), seed=SEEDS
)
def test_stream_sampler_stripes_consecutive_chunks_of_one_stream(n, workers, batch_size, seed):
    samplers = [StreamSampler(n, workers, w, batch_size, seed) for w in range(workers)]
    rounds = math.ceil(2 * n / (workers * batch_size))  # enough chunks for two passes
    stream = np.concatenate([s.next_batch() for _ in range(rounds) for s in samplers])
    assert stream.size >= 2 * n
    for one_pass in (stream[:n], stream[n : 2 * n]):
        np.testing.assert_array_equal(np.sort(one_pass), np.arange(n))
    np.testing.assert_array_equal(stream[:n], np.random.default_rng([seed, 0]).permutation(n))


@pytest.mark.parametrize(("workers", "batch_size", "draws"), [(1, 10, 12), (4, 5, 6), (3, 8, 5)])
def test_stream_sampler_one_pass_covers_every_index_once(workers, batch_size, draws):
    n = workers * batch_size * draws
    samplers = [StreamSampler(n, workers, w, batch_size, seed=11) for w in range(workers)]
    drawn = np.concatenate([s.next_batch() for s in samplers for _ in range(draws)])
    np.testing.assert_array_equal(np.sort(drawn), np.arange(n))


def test_make_sampler_picks_sampler_and_batch_size():
    stream = make_sampler("stream", None, n=100, workers=4, worker=2, batch_size=8, seed=0)
    assert isinstance(stream, StreamSampler) and stream.next_batch().size == 8
    shards = [np.arange(0, 300), np.arange(300, 400)]
    for worker, expected in enumerate([12, 4]):
        sampler = make_sampler("unbalanced", shards, 400, 2, worker, batch_size=8, seed=0)
        assert isinstance(sampler, ShardSampler)
        batch = sampler.next_batch()
        assert batch.size == expected and np.isin(batch, shards[worker]).all()
    with pytest.raises(ValueError, match="shards"):
        make_sampler("iid", None, n=100, workers=2, worker=0, batch_size=8, seed=0)


# ---------------------------------------------------------------- datasets


@pytest.mark.parametrize("name", sorted(DATASETS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_loaded_dataset_agrees_with_its_info(name, dtype):
    ds = load_dataset(name, dtype)
    info = DATASETS[name]
    assert ds.info == info and info.name == name
    x_dtype = torch.int64 if info.is_text else dtype  # text samples are character ids
    assert ds.x_train.shape == (info.n_train, info.n_features) and ds.x_train.dtype == x_dtype
    assert ds.x_test.shape == (info.n_test, info.n_features) and ds.x_test.dtype == x_dtype
    if info.is_classification:
        assert ds.y_train.shape == (info.n_train,) and ds.y_train.dtype == torch.int64
        assert ds.y_test.shape == (info.n_test,) and ds.y_test.dtype == torch.int64
        for y in (ds.y_train, ds.y_test):
            assert set(y.tolist()) == set(range(info.n_classes))
    else:
        assert ds.y_train.shape == (info.n_train, 1) and ds.y_train.dtype == dtype
        assert ds.y_test.shape == (info.n_test, 1) and ds.y_test.dtype == dtype


@pytest.mark.parametrize("name", sorted(n for n in DATASETS if not DATASETS[n].is_text))
def test_features_are_standardised_on_the_train_split(name):
    ds = load_dataset(name, torch.float64)
    x = ds.x_train.numpy()
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(ds.x_test.numpy()))
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-10)
    std = x.std(axis=0)
    np.testing.assert_allclose(std[std > 0], 1, rtol=1e-10)
    assert np.abs(ds.x_test.numpy().mean(axis=0)).max() > 1e-3  # test split not refitted


@pytest.mark.parametrize("name", ["iris", "digits"])
def test_classification_split_is_stratified(name):
    ds = load_dataset(name)
    train, test = (np.bincount(y.numpy()) for y in (ds.y_train, ds.y_test))
    assert np.all(np.abs(test - 0.25 * (train + test)) <= 1)


def test_linreg_is_linear_with_small_noise():
    ds = load_dataset("linreg", torch.float64)
    x = np.hstack([ds.x_train.numpy(), np.ones((ds.info.n_train, 1))])
    y = ds.y_train.numpy()[:, 0]
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual_std = np.std(y - x @ coef)
    assert 0.08 < residual_std < 0.12
    assert 1 - residual_std**2 / y.var() > 0.99


def test_datasets_are_fixed_and_loads_are_independent():
    first = load_dataset("digits")
    first.x_train[0, 0] = 1234.0
    second, third = load_dataset("digits"), load_dataset("digits")
    assert second.x_train[0, 0] != 1234.0
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(second, field), getattr(third, field))


def test_synthetic_data_ignores_the_global_random_state():
    from ddlkit.data import datasets

    arrays = []
    for global_seed in (1, 2):
        np.random.seed(global_seed)
        torch.manual_seed(global_seed)
        arrays.append(datasets._raw_arrays("linreg"))
    for a, b in zip(*arrays, strict=True):
        np.testing.assert_array_equal(a, b)


def test_dataset_registry_is_read_only_and_validated():
    assert DATASETS["digits"].is_classification and not DATASETS["linreg"].is_classification
    with pytest.raises(TypeError):
        DATASETS["mnist"] = DATASETS["digits"]  # type: ignore[index]
    with pytest.raises(ValueError, match=r"name.*mnist"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="dtype"):
        load_dataset("iris", torch.int32)
