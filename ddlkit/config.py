"""``Experiment``: one frozen, validated description of a training run.

Every bad value raises :class:`~ddlkit.errors.ConfigError` at construction, naming the
field, the value and what is allowed, so nothing is started with a bad setting.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ddlkit.data.datasets import DATASETS
from ddlkit.data.sharding import LABEL_SCHEMES, SCHEMES
from ddlkit.errors import ConfigError
from ddlkit.modes import MODES

MAX_WORKERS = 16
MODELS = ("linear", "mlp")
OPTIMIZERS = ("sgd", "momentum", "adam")
ALLREDUCE_IMPLS = ("ring", "gloo")
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Experiment:
    """A distributed training run, from mode and data sharding to optimiser and timeouts.

    ``steps`` counts synchronous rounds: in ``sync`` and ``allreduce`` every worker takes
    ``steps`` steps; in ``async`` the server applies ``steps * workers`` single-worker
    updates, the same number of gradients, from whichever workers deliver them.
    ``batch_size`` is the per-worker batch for equal shards; the global batch
    ``batch_size * workers`` is split across workers in proportion to shard size.
    """

    mode: str = "sync"
    workers: int = 2
    dataset: str = "digits"
    model: str = "mlp"
    sharding: str = "iid"
    dirichlet_alpha: float = 0.5
    classes_per_worker: int = 2
    size_ratio: float = 4.0
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    batch_size: int = 32
    steps: int = 100
    hidden: int = 64
    seed: int = 0
    eval_every: int = 10
    worker_delays: tuple[float, ...] = ()
    allreduce_impl: str = "ring"
    dtype: str = "float32"
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.worker_delays, list):
            object.__setattr__(self, "worker_delays", tuple(self.worker_delays))
        _validate(self)

    # -- conversions -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        d = asdict(self)
        d["worker_delays"] = list(self.worker_delays)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Experiment:
        """Rebuild from :meth:`to_dict` output; unknown keys are a ConfigError."""
        names = {f.name for f in fields(cls)}
        for key in data:
            if key not in names:
                raise ConfigError(key, data[key], f"unknown field; known fields: {sorted(names)}")
        return cls(**data)

    def replace(self, **changes: Any) -> Experiment:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    # -- derived facts ------------------------------------------------------------
    @property
    def world_size(self) -> int:
        """Processes in the run (workers, plus the server in parameter-server modes)."""
        return MODES[self.mode].world_size(self.workers)

    def label(self) -> str:
        """A short legend label, e.g. ``async · 4 workers · dirichlet α=0.3``."""
        parts = [self.mode, f"{self.workers} worker{'s' if self.workers != 1 else ''}"]
        if self.sharding == "dirichlet":
            parts.append(f"dirichlet α={self.dirichlet_alpha:g}")
        elif self.sharding == "label-skew":
            parts.append(f"label-skew {self.classes_per_worker}/worker")
        elif self.sharding == "unbalanced":
            parts.append(f"unbalanced ×{self.size_ratio:g}")
        else:
            parts.append(self.sharding)
        if any(self.worker_delays):
            parts.append("straggler")
        return " · ".join(parts)


# -- validation -------------------------------------------------------------------
def _choice(field: str, value: Any, allowed: tuple[str, ...] | list[str]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(field, value, f"one of {', '.join(repr(a) for a in allowed)}")


def _int(field: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field, value, f"a whole number from {lo} to {hi}")
    if not lo <= value <= hi:
        raise ConfigError(field, value, f"a whole number from {lo} to {hi}")


def _float(field: str, value: Any, lo: float, hi: float, *, lo_open: bool = False) -> None:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float))
          and math.isfinite(value) and (value > lo if lo_open else value >= lo) and value <= hi)
    if not ok:
        left = "(" if lo_open else "["
        raise ConfigError(field, value, f"a finite number in {left}{lo:g}, {hi:g}]")


def _validate(e: Experiment) -> None:
    _choice("mode", e.mode, list(MODES))
    _int("workers", e.workers, 1, MAX_WORKERS)
    _choice("dataset", e.dataset, list(DATASETS))
    _choice("model", e.model, MODELS)
    _choice("sharding", e.sharding, SCHEMES)
    _float("dirichlet_alpha", e.dirichlet_alpha, 0.0, 1000.0, lo_open=True)
    _float("size_ratio", e.size_ratio, 1.0, 1000.0)
    _choice("optimizer", e.optimizer, OPTIMIZERS)
    _float("lr", e.lr, 0.0, 10.0, lo_open=True)
    _float("momentum", e.momentum, 0.0, 0.999)
    _int("steps", e.steps, 1, 1_000_000)
    _int("hidden", e.hidden, 1, 4096)
    _int("seed", e.seed, 0, 2**32 - 1)
    _int("eval_every", e.eval_every, 1, 1_000_000)
    _choice("allreduce_impl", e.allreduce_impl, ALLREDUCE_IMPLS)
    _choice("dtype", e.dtype, DTYPES)
    _float("timeout_s", e.timeout_s, 1.0, 24 * 3600.0)

    info = DATASETS[e.dataset]
    _int("batch_size", e.batch_size, 1, 4096)
    if e.batch_size * e.workers > info.n_train:
        raise ConfigError("batch_size", e.batch_size,
                          f"batch_size × workers ≤ {info.n_train}, the size of the "
                          f"{e.dataset!r} training set ({e.workers} workers)")
    if e.workers > info.n_train:
        raise ConfigError("workers", e.workers, f"at most {info.n_train} for {e.dataset!r}")
    if e.sharding in LABEL_SCHEMES and not info.is_classification:
        raise ConfigError("sharding", e.sharding,
                          f"{e.dataset!r} has no class labels; use 'iid', 'unbalanced' or "
                          f"'stream', or a classification dataset ('iris', 'digits')")
    if e.sharding == "label-skew":
        _int("classes_per_worker", e.classes_per_worker, 1, info.n_classes)
    else:
        _int("classes_per_worker", e.classes_per_worker, 1, 1000)

    if not isinstance(e.worker_delays, tuple):
        raise ConfigError("worker_delays", e.worker_delays,
                          "a list of seconds, one per worker, or empty")
    if e.worker_delays and len(e.worker_delays) != e.workers:
        raise ConfigError("worker_delays", list(e.worker_delays),
                          f"empty, or exactly one delay per worker ({e.workers} values)")
    for d in e.worker_delays:
        _float("worker_delays", d, 0.0, 10.0)
