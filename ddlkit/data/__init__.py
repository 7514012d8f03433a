"""Data for ddlkit: fixed datasets, sharding across workers, and per-step sampling."""

from ddlkit.data.datasets import DATASETS, Dataset, DatasetInfo, load_dataset
from ddlkit.data.sampling import (
    Sampler,
    ShardSampler,
    StreamSampler,
    make_sampler,
    worker_batch_sizes,
)
from ddlkit.data.sharding import (
    LABEL_SCHEMES,
    SCHEMES,
    apportion,
    label_distribution,
    make_shards,
    shard_dirichlet,
    shard_iid,
    shard_label_skew,
    shard_unbalanced,
)

__all__ = [
    "DATASETS",
    "LABEL_SCHEMES",
    "SCHEMES",
    "Dataset",
    "DatasetInfo",
    "Sampler",
    "ShardSampler",
    "StreamSampler",
    "apportion",
    "label_distribution",
    "load_dataset",
    "make_sampler",
    "make_shards",
    "shard_dirichlet",
    "shard_iid",
    "shard_label_skew",
    "shard_unbalanced",
    "worker_batch_sizes",
]
