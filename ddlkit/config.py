"""``Experiment``: one frozen, validated description of a training run.

Every bad value raises :class:`~ddlkit.errors.ConfigError` at construction, naming the
field, the value and what is allowed, so nothing is started with a bad setting.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from types import MappingProxyType
from typing import Any, Mapping

import torch

from ddlkit.comm.network import network_label
from ddlkit.data.datasets import DATASETS
from ddlkit.data.sharding import LABEL_SCHEMES, SCHEMES
from ddlkit.errors import ConfigError
from ddlkit.faults import Fault, parse_fault
from ddlkit.modes import MODES, modes_with

MAX_WORKERS = 16
#: widest hidden layer: 64-16384-10 is a 1.2M-parameter MLP (the benchmarks' "wide" model)
MAX_HIDDEN = 16384
MODELS = ("linear", "mlp", "cnn", "rnn")
OPTIMIZERS = ("sgd", "momentum", "adam")
ALLREDUCE_IMPLS = ("ring", "doubling", "gloo")
#: element types a run may use, by name
DTYPES: Mapping[str, torch.dtype] = MappingProxyType(
    {"float32": torch.float32, "float64": torch.float64})
WORKER_LOSS = ("auto", "fail", "continue")
COMPRESSIONS = ("none", "topk", "qsgd")
#: modes whose gradients can be compressed (local SGD averages models, not gradients)
COMPRESSIBLE_MODES: tuple[str, ...] = modes_with("compression")
#: bits per QSGD entry, fewest and most: one bit is the sign (see ddlkit.comm.compress.qsgd)
QUANT_BITS = (2, 16)
#: the largest ``staleness_bound`` (None, or any bound ≥ ``steps``, means ∞)
MAX_STALENESS = 1_000_000
BATCH_SPLITS = ("shard", "speed")
LR_SCALINGS = ("none", "linear")


@dataclass(frozen=True)
class Experiment:
    """A distributed training run, from mode and data sharding to optimiser and timeouts.

    ``steps`` counts synchronous rounds: in ``sync`` and ``allreduce`` every worker takes
    ``steps`` steps; in ``async`` the server applies ``steps * workers`` single-worker
    updates, the same number of gradients, from whichever workers deliver them.
    ``batch_size`` is the per-worker batch for equal shards; the global batch
    ``batch_size * workers`` is split across workers in proportion to shard size.
    ``faults`` plans failures (see :mod:`ddlkit.faults`); ``on_worker_loss`` says what a
    parameter server does when a worker is lost: ``fail`` (stop the run), ``continue``
    (carry on with the survivors) or ``auto`` (async continues, sync fails: the registry's
    ``survives_worker_loss``).
    ``checkpoint_every`` k > 0 makes the model's holder save a checkpoint every k steps.

    Beyond sync and async (issue 6):

    - ``staleness_bound`` s (mode ``ssp``, Ho et al. 2013): a worker may run at most s
      steps ahead of the slowest; s=0 is sync, and None (∞) or any s ≥ ``steps`` never
      blocks (async). Read it as :attr:`staleness_limit`, which says None for all of these.
    - ``local_steps`` H (mode ``local-sgd``, McMahan et al. 2017): workers take H local
      steps between model averages; H=1 is synchronous all-reduce SGD.
    - ``compression`` of gradients (modes that read it: ``COMPRESSIBLE_MODES``): ``topk`` keeps the
      ``compress_ratio`` largest entries (Lin et al. 2018), with ``error_feedback`` of
      what was dropped (Seide et al. 2014); ``qsgd`` quantises stochastically to
      ``quant_bits`` bits (Alistarh et al. 2017).
    - ``backup_workers`` b (mode ``sync``, Chen et al. 2016): the server steps with the
      first N−b gradients to arrive. ``random_delay_s`` adds a seeded random delay with
      this mean to every worker step (a random straggler); ``batch_split="speed"`` sizes
      batches by worker speed instead of shard size.
    - ``net_latency_ms`` α and ``net_bandwidth_mbps`` (0: unlimited) emulate a network:
      every message costs α + bytes/bandwidth more (a labelled emulation).
    - ``lr_scaling="linear"`` multiplies ``lr`` by the number of workers (Goyal et al.
      2017), reached after a linear ``warmup_steps`` ramp from ``lr``.
    ``model`` must suit ``dataset`` (:func:`models_for`): ``linear`` and ``mlp`` take
    feature vectors, ``cnn`` the ``digits`` images, and ``rnn`` (a character language
    model) only ``text``, whose topics are its classes for label-based sharding.
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
    unresponsive_s: float = 10.0
    faults: tuple[str, ...] = ()
    on_worker_loss: str = "auto"
    checkpoint_every: int = 0
    staleness_bound: int | None = 2
    local_steps: int = 4
    compression: str = "none"
    compress_ratio: float = 0.01
    error_feedback: bool = True
    quant_bits: int = 8
    backup_workers: int = 0
    random_delay_s: float = 0.0
    batch_split: str = "shard"
    net_latency_ms: float = 0.0
    net_bandwidth_mbps: float = 0.0
    lr_scaling: str = "none"
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        for name in ("worker_delays", "faults"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        _validate(self)

    # -- conversions -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        d = asdict(self)
        d["worker_delays"] = list(self.worker_delays)
        d["faults"] = list(self.faults)
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
    def fault_list(self) -> list[Fault]:
        """The planned faults, parsed."""
        return [parse_fault(s) for s in self.faults]

    @property
    def continues_after_worker_loss(self) -> bool:
        """Whether losing a worker leaves the run going (see ``on_worker_loss``)."""
        if self.on_worker_loss == "auto":
            return MODES[self.mode].survives_worker_loss
        return self.on_worker_loss == "continue"

    @property
    def staleness_limit(self) -> int | None:
        """The staleness bound s in force, or None for ∞: ``staleness_bound`` None, or any
        s ≥ ``steps`` (no worker can get ``steps`` steps ahead, so it never blocks)."""
        s = self.staleness_bound
        return None if s is None or s >= self.steps else s

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
        parts.extend(self.faults)
        if self.on_worker_loss != "auto":
            parts.append(f"on loss: {self.on_worker_loss}")
        reads = MODES[self.mode].settings
        if "staleness_bound" in reads:
            parts.insert(1, staleness_label(self.staleness_limit))
        if "local_steps" in reads:
            parts.insert(1, f"H={self.local_steps}")
        if self.compression == "topk":
            parts.append(f"top-{self.compress_ratio:.0%}"
                         + (" +EF" if self.error_feedback else " no EF"))
        elif self.compression == "qsgd":
            parts.append(f"QSGD {self.quant_bits}-bit")
        if self.backup_workers:
            parts.append(f"{self.backup_workers} backup")
        if self.random_delay_s:
            parts.append(f"random delay {self.random_delay_s * 1000:g} ms")
        if self.batch_split != "shard":
            parts.append(f"batches by {self.batch_split}")
        if self.net_latency_ms or self.net_bandwidth_mbps:
            parts.append(network_label(self.net_latency_ms, self.net_bandwidth_mbps))
        if self.lr_scaling != "none":
            parts.append("lr×N" + (f" warm-up {self.warmup_steps}" if self.warmup_steps else ""))
        return " · ".join(parts)


def staleness_label(bound: int | None) -> str:
    """``s=3``, or ``s=∞`` for no bound (None)."""
    return "s=∞" if bound is None else f"s={bound}"


def models_for(dataset: str) -> tuple[str, ...]:
    """The models that can train on ``dataset``.

    ``linear`` and ``mlp`` take feature vectors, ``cnn`` takes images (``digits``, whose 64
    features are an 8×8 image) and ``rnn`` is a language model that takes only ``text``.
    """
    info = DATASETS[dataset]
    if info.is_text:
        return ("rnn",)
    return ("linear", "mlp", "cnn") if info.image_shape else ("linear", "mlp")


# -- validation -------------------------------------------------------------------
def _choice(field: str, value: Any, allowed: tuple[str, ...] | list[str]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(field, value, f"one of {', '.join(repr(a) for a in allowed)}")


def _int(field: str, value: Any, lo: int, hi: int, also: str = "") -> None:
    if (isinstance(value, bool) or not isinstance(value, int)) or not lo <= value <= hi:
        raise ConfigError(field, value, f"a whole number from {lo} to {hi}"
                          + (f", {also}" if also else ""))


def _float(field: str, value: Any, lo: float, hi: float, *, lo_open: bool = False) -> None:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float))
          and math.isfinite(value) and (value > lo if lo_open else value >= lo) and value <= hi)
    if not ok:
        left = "(" if lo_open else "["
        raise ConfigError(field, value, f"a finite number in {left}{lo:g}, {hi:g}]")


def _bool(field: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(field, value, "True or False")


def _validate(e: Experiment) -> None:
    """Every field, in a fixed order: the first bad value is the one reported."""
    _validate_basics(e)
    _validate_data(e)
    _validate_delays(e)
    _validate_faults(e)
    _validate_techniques(e)


def _validate_basics(e: Experiment) -> None:
    """Mode, workers, data set and model, optimiser, steps and the like."""
    _choice("mode", e.mode, list(MODES))
    _int("workers", e.workers, 1, MAX_WORKERS)
    _choice("dataset", e.dataset, list(DATASETS))
    _choice("model", e.model, MODELS)
    _validate_model(e)
    _choice("sharding", e.sharding, SCHEMES)
    _float("dirichlet_alpha", e.dirichlet_alpha, 0.0, 1000.0, lo_open=True)
    _float("size_ratio", e.size_ratio, 1.0, 1000.0)
    _choice("optimizer", e.optimizer, OPTIMIZERS)
    _float("lr", e.lr, 0.0, 10.0, lo_open=True)
    _float("momentum", e.momentum, 0.0, 0.999)
    _int("steps", e.steps, 1, 1_000_000)
    _int("hidden", e.hidden, 1, MAX_HIDDEN)
    _int("seed", e.seed, 0, 2**32 - 1)
    _int("eval_every", e.eval_every, 1, 1_000_000)
    _choice("allreduce_impl", e.allreduce_impl, ALLREDUCE_IMPLS)
    _choice("dtype", e.dtype, list(DTYPES))
    _float("timeout_s", e.timeout_s, 1.0, 24 * 3600.0)
    # a worker beats every 0.5 s (runtime.lifeline): allow a few missed beats at least
    _float("unresponsive_s", e.unresponsive_s, 2.0, 3600.0)


def _validate_model(e: Experiment) -> None:
    """The model must read the data set's samples (:func:`models_for`)."""
    allowed_models = models_for(e.dataset)
    if e.model not in allowed_models:
        if DATASETS[e.dataset].is_text:
            allowed = (f"for dataset {e.dataset!r} only 'rnn': its samples are character "
                       f"sequences, which only the language model reads")
        else:
            why = {"cnn": "'cnn' reads 8×8 images, as in dataset='digits'",
                   "rnn": "'rnn' is a language model, for dataset='text'"}[e.model]
            allowed = (f"for dataset {e.dataset!r} one of "
                       f"{', '.join(map(repr, allowed_models))}; {why}")
        raise ConfigError("model", e.model, allowed)


def _validate_data(e: Experiment) -> None:
    """Batch sizes and sharding against the data set's size and labels."""
    info = DATASETS[e.dataset]
    _int("batch_size", e.batch_size, 1, 4096)
    if e.batch_size * e.workers > info.n_train:
        raise ConfigError("batch_size", e.batch_size,
                          f"batch_size × workers ≤ {info.n_train}, the size of the "
                          f"{e.dataset!r} training set ({e.workers} workers)")
    if e.workers > info.n_train:
        raise ConfigError("workers", e.workers, f"at most {info.n_train} for {e.dataset!r}")
    if e.sharding in LABEL_SCHEMES and not info.is_classification:
        labelled = ", ".join(repr(n) for n, i in DATASETS.items() if i.is_classification)
        raise ConfigError("sharding", e.sharding,
                          f"{e.dataset!r} has no class labels; use 'iid', 'unbalanced' or "
                          f"'stream', or a dataset with labels ({labelled})")
    if e.sharding == "label-skew":
        _int("classes_per_worker", e.classes_per_worker, 1, info.n_classes)
    else:
        _int("classes_per_worker", e.classes_per_worker, 1, 1000)


def _validate_delays(e: Experiment) -> None:
    """``worker_delays``: empty, or one delay in seconds per worker."""
    if not isinstance(e.worker_delays, tuple):
        raise ConfigError("worker_delays", e.worker_delays,
                          "a list of seconds, one per worker, or empty")
    if e.worker_delays and len(e.worker_delays) != e.workers:
        raise ConfigError("worker_delays", list(e.worker_delays),
                          f"empty, or exactly one delay per worker ({e.workers} values)")
    for d in e.worker_delays:
        _float("worker_delays", d, 0.0, 10.0)


def _validate_faults(e: Experiment) -> None:
    """What happens to a lost worker, checkpoints and planned faults."""
    _choice("on_worker_loss", e.on_worker_loss, WORKER_LOSS)
    if e.on_worker_loss == "continue" and "on_worker_loss" not in MODES[e.mode].settings:
        raise ConfigError("on_worker_loss", e.on_worker_loss,
                          f"'fail' or 'auto' in mode {e.mode!r}: an all-reduce ring cannot go "
                          f"on without one of its members (torchrun's elastic restart can)")
    _int("checkpoint_every", e.checkpoint_every, 0, e.steps)
    if not isinstance(e.faults, tuple):
        raise ConfigError("faults", e.faults, "a list of specs like 'kill:2@30'")
    for spec in e.faults:
        try:
            fault = parse_fault(spec)
        except ValueError as err:
            raise ConfigError("faults", spec, str(err)) from None
        if fault.rank >= e.world_size:
            raise ConfigError("faults", spec, f"a rank from 0 to {e.world_size - 1} "
                              f"({e.mode} with {e.workers} workers has {e.world_size} ranks)")
        if fault.step > e.steps:
            raise ConfigError("faults", spec, f"a step from 1 to steps={e.steps}")


def _validate_techniques(e: Experiment) -> None:
    """The settings beyond sync and async (issue 6), each against the modes that read it."""
    if e.staleness_bound is not None:
        _int("staleness_bound", e.staleness_bound, 0, MAX_STALENESS, also="or ∞ (None)")
    _int("local_steps", e.local_steps, 1, 1_000_000)
    if "local_steps" in MODES[e.mode].settings and e.checkpoint_every and (
            e.optimizer != "sgd" or e.checkpoint_every % e.local_steps):
        raise ConfigError("checkpoint_every", e.checkpoint_every,
                          f"0, or a multiple of local_steps={e.local_steps} with optimizer "
                          f"'sgd', in mode {e.mode!r}: a checkpoint is exact only right after "
                          f"an average, and only rank 0's optimiser state would be saved")
    _choice("compression", e.compression, COMPRESSIONS)
    if e.compression != "none" and not MODES[e.mode].compresses_gradients:
        raise ConfigError("compression", e.compression,
                          f"'none' in mode {e.mode!r}; gradients are compressed in modes "
                          f"{', '.join(map(repr, COMPRESSIBLE_MODES))}")
    _float("compress_ratio", e.compress_ratio, 0.0, 1.0, lo_open=True)
    _bool("error_feedback", e.error_feedback)
    _int("quant_bits", e.quant_bits, *QUANT_BITS)
    _int("backup_workers", e.backup_workers, 0, MAX_WORKERS)
    if e.backup_workers and "backup_workers" not in MODES[e.mode].settings:
        raise ConfigError("backup_workers", e.backup_workers,
                          f"0 in mode {e.mode!r}; backup workers are a sync parameter-server "
                          f"technique (the server steps with the first N−b gradients)")
    if e.backup_workers >= e.workers:
        raise ConfigError("backup_workers", e.backup_workers,
                          f"from 0 to workers − 1 = {e.workers - 1}: the server needs at "
                          f"least one gradient per step")
    _float("random_delay_s", e.random_delay_s, 0.0, 10.0)
    _choice("batch_split", e.batch_split, BATCH_SPLITS)
    if e.batch_split == "speed" and e.sharding == "stream":
        raise ConfigError("batch_split", e.batch_split,
                          "'shard' with sharding='stream': the stream hands every worker "
                          "batch_size samples; speed-based batches need fixed shards")
    _float("net_latency_ms", e.net_latency_ms, 0.0, 10_000.0)
    _float("net_bandwidth_mbps", e.net_bandwidth_mbps, 0.0, 1e6)
    _choice("lr_scaling", e.lr_scaling, LR_SCALINGS)
    _int("warmup_steps", e.warmup_steps, 0, e.steps)
