"""The four small, fixed datasets every ddlkit experiment trains on.

A dataset here is *fixed*: it does not depend on the experiment seed. The synthetic data and the
train/test split use one internal seed, so two runs with different experiment seeds see the same
samples and differ only in how those samples are sharded, sampled and initialised.

- ``linreg``: the worked example of the source article's §4.2, linear regression with the squared
  loss (θᵀx − y)²; 1200 samples, 8 standard-normal features, y = x·w + b + 0.1·noise.
- ``iris``: Fisher's iris flowers (150 samples, 4 features, 3 classes), shipped with scikit-learn.
- ``digits``: 8×8 handwritten digits (1797 samples, 64 features, 10 classes), shipped with
  scikit-learn. A ``cnn`` reads the 64 features as a 1×8×8 image (``image_shape``).
- ``text``: Python's own documentation as sequences of 33 characters, for a next-character
  language model; each sequence's label is its topic (see :mod:`ddlkit.data.text`).

Features are standardised with the mean and standard deviation of the *training* split only, so
no information leaks from the test split (a constant column is divided by 1, not by 0). The
``text`` samples are character ids and are not standardised.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from functools import cache
from typing import Mapping

import numpy as np
import torch

from ddlkit.data.text import N_TEST, N_TRAIN, SEQUENCE_LENGTH, TOPIC_GROUPS, VOCAB, text_arrays

DATA_SEED = 20131
"""Seed of the synthetic data and of the train/test split; independent of the experiment seed."""

TEST_FRACTION = 0.25

LINREG_WEIGHTS = (1.5, -2.0, 0.5, 0.0, 3.0, -1.0, 0.25, 2.0)
"""True weights w of ``linreg`` (before standardisation, which barely changes them)."""
LINREG_BIAS = 0.7
LINREG_NOISE_STD = 0.1
LINREG_N_SAMPLES = 1200


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset, known without loading it.

    For ``text`` a sample is a sequence of ``n_features`` character ids, its class is its
    topic (what label-based sharding splits by) and ``vocab_size`` is the number of
    distinct characters; the model predicts characters, not the topic. ``image_shape`` is
    the (channels, height, width) a convolutional model reshapes the features to.
    """

    name: str
    n_features: int
    n_classes: int  # 0 for regression
    n_train: int
    n_test: int
    vocab_size: int = 0  # text only
    image_shape: tuple[int, ...] = ()  # datasets whose features are an image

    @property
    def is_classification(self) -> bool:
        """True when the targets are class ids (topics, for text), False for regression."""
        return self.n_classes > 0

    @property
    def is_text(self) -> bool:
        """True for character sequences (a language model's data)."""
        return self.vocab_size > 0


DATASETS: Mapping[str, DatasetInfo] = types.MappingProxyType(
    {
        "linreg": DatasetInfo("linreg", n_features=8, n_classes=0, n_train=900, n_test=300),
        "iris": DatasetInfo("iris", n_features=4, n_classes=3, n_train=112, n_test=38),
        "digits": DatasetInfo("digits", n_features=64, n_classes=10, n_train=1347, n_test=450,
                              image_shape=(1, 8, 8)),
        "text": DatasetInfo("text", n_features=SEQUENCE_LENGTH + 1, n_classes=len(TOPIC_GROUPS),
                            n_train=N_TRAIN, n_test=N_TEST, vocab_size=len(VOCAB)),
    }
)


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset: standardised features and targets, split into train and test.

    Classification targets are int64 class ids of shape [n]; regression targets are floats of
    shape [n, 1], matching a model whose output has one column. For ``text``, ``x`` holds
    int64 character ids [n, n_features] whatever the dtype, and ``y`` the topic ids.
    """

    info: DatasetInfo
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_dataset(name: str, dtype: torch.dtype = torch.float32) -> Dataset:
    """Load dataset ``name`` with floating-point tensors of type ``dtype``.

    The expensive part (generation, split, standardisation) is cached per name; every call returns
    fresh tensors, so changing one loaded dataset in place cannot change the next one.
    """
    if name not in DATASETS:
        raise ValueError(f"name: unknown dataset {name!r}; allowed: {sorted(DATASETS)}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype: {dtype!r} is not a floating-point torch dtype; allowed e.g. "
                         "torch.float32 or torch.float64")
    info = DATASETS[name]
    x_train, y_train, x_test, y_test = text_arrays() if info.is_text else _standardised_arrays(name)
    feature_dtype = torch.int64 if info.is_text else dtype
    target_dtype = torch.int64 if info.is_classification else dtype
    return Dataset(
        info=info,
        x_train=torch.tensor(x_train, dtype=feature_dtype),
        y_train=torch.tensor(y_train, dtype=target_dtype),
        x_test=torch.tensor(x_test, dtype=feature_dtype),
        y_test=torch.tensor(y_test, dtype=target_dtype),
    )


@cache
def _standardised_arrays(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) as read-only float64 / int64 numpy arrays.

    Read from the on-disk cache (:mod:`ddlkit.data.cache`) when it has them: importing
    scikit-learn takes longer than importing torch, and would otherwise be paid by every
    cold start. The cache is keyed by scikit-learn's version and holds exactly what
    :func:`_split_and_standardise` computes.
    """
    from ddlkit.data import cache as disk

    arrays = disk.load(name)
    if arrays is None:
        arrays = _split_and_standardise(name)
        disk.save(name, arrays)
    for array in arrays:
        array.flags.writeable = False
    return arrays


def _split_and_standardise(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split ``name`` into train and test (stratified for classes) and standardise."""
    from sklearn.model_selection import train_test_split  # lazy: sklearn takes ~1.5 s to import

    x, y = _raw_arrays(name)
    is_classification = DATASETS[name].is_classification
    x_train, x_test, y_train, y_test = train_test_split(
        x,
        y,
        test_size=TEST_FRACTION,
        random_state=DATA_SEED,
        stratify=y if is_classification else None,
    )
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std < 1e-12] = 1.0  # a constant column (e.g. a digits border pixel) is only centred
    x_train = (x_train - mean) / std
    x_test = (x_test - mean) / std
    return x_train, y_train, x_test, y_test


def _raw_arrays(name: str) -> tuple[np.ndarray, np.ndarray]:
    """All samples of ``name`` before the split: features [n, d] float64 and targets."""
    if name == "linreg":
        return _make_linreg()
    from sklearn.datasets import load_digits, load_iris

    loader = {"iris": load_iris, "digits": load_digits}[name]
    x, y = loader(return_X_y=True)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.int64)


def _make_linreg() -> tuple[np.ndarray, np.ndarray]:
    """Synthetic linear regression: y = x·w + b + σ·ε with x, ε ~ N(0, 1), targets [n, 1]."""
    rng = np.random.default_rng(DATA_SEED)
    weights = np.asarray(LINREG_WEIGHTS)
    x = rng.standard_normal((LINREG_N_SAMPLES, weights.size))
    noise = rng.standard_normal(LINREG_N_SAMPLES)
    y = x @ weights + LINREG_BIAS + LINREG_NOISE_STD * noise
    return x, y.reshape(-1, 1)
