"""The mode registry: every training mode, and everything ddlkit needs to know about it.

A mode is one way the ranks cooperate; its code is one strategy in ``ddlkit/strategies/``.
What the rest of ddlkit asks about a mode is written here, once: the role of each rank,
the header its messages carry, the settings it reads, how it communicates (for the cost
model and the α–β predictor), whether the LR schedule counts its gradients one by one,
whether it survives a lost worker, and its label on the panel. Config validation, the
cost model, the LR schedule, the panel and the plots read this registry; none keeps a
table of modes of its own. A new mode is registered here and nowhere else.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class Header:
    """Header elements ddlkit adds to each message of a mode, by direction.

    ``push`` rides on a worker→server gradient, ``pull`` on a server→worker reply.
    For all-reduce, ``push`` is the header reduced along with the gradient (or model)
    and ``pull`` is 0. Headers count in ``bytes_*``, not in ``payload_*``.
    """

    push: int
    pull: int

    def __post_init__(self) -> None:
        for name in ("push", "pull"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: {value!r} is not allowed; a whole number ≥ 0")


class CommPattern(Enum):
    """How a mode's ranks communicate, as the cost model and the α–β predictor count it."""

    #: every step each worker pushes one gradient to the server and pulls the model back
    PS_EVERY_STEP = "parameter server, every step"
    #: every step the workers all-reduce their gradients
    ALLREDUCE_EVERY_STEP = "all-reduce, every step"
    #: the workers all-reduce their models once every ``local_steps`` steps
    ALLREDUCE_EVERY_H = "all-reduce, every local_steps steps"
    #: no fixed per-step pattern: one push and one reply per gradient, and timing decides
    #: which worker sends next (count a run's traffic from its gradients per worker)
    PS_PER_GRADIENT = "parameter server, per gradient"

    @property
    def uses_server(self) -> bool:
        """Whether the workers talk to a server (rank 0) rather than to each other."""
        return self in (CommPattern.PS_EVERY_STEP, CommPattern.PS_PER_GRADIENT)

    @property
    def fixed_per_step(self) -> bool:
        """Whether every step moves the same messages, so a step can be predicted."""
        return self is not CommPattern.PS_PER_GRADIENT


@dataclass(frozen=True)
class Mode:
    """A training mode, as the rest of ddlkit sees it.

    - ``name``: the value of ``Experiment.mode``.
    - ``label``: how the panel's mode toggle names it.
    - ``summary``: one line for ``--help`` and the docs.
    - ``module``: the strategy's module; its ``run(ctx)`` runs every rank.
    - ``has_server``: rank 0 is a parameter server and ranks 1…N the workers.
    - ``header``: header elements per message (see :class:`Header`).
    - ``pattern``: how the ranks communicate (see :class:`CommPattern`).
    - ``settings``: the names of the mode-specific ``Experiment`` fields it reads
      (``staleness_bound``, ``compression``, …). The panel shows those controls only in
      the modes that list them; config refuses some of them elsewhere.
    - ``lr_per_gradient``: the server applies the workers' gradients as they come, some of
      a round at a time, so the LR schedule counts gradients (N per step), not updates.
    - ``survives_worker_loss``: a lost worker leaves the run going under
      ``on_worker_loss="auto"``.
    """

    name: str
    label: str
    summary: str
    module: str
    has_server: bool
    header: Header
    pattern: CommPattern
    settings: frozenset[str] = frozenset()
    lr_per_gradient: bool = False
    survives_worker_loss: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.settings, frozenset):
            raise ValueError(f"settings: {self.settings!r} is not allowed; a frozenset of "
                             f"Experiment field names")
        if self.pattern.uses_server != self.has_server:
            raise ValueError(f"pattern: {self.pattern.name} does not suit mode {self.name!r} "
                             f"with has_server={self.has_server}")

    @property
    def compresses_gradients(self) -> bool:
        """Whether the mode's gradients may be compressed (it reads ``compression``)."""
        return "compression" in self.settings

    def world_size(self, workers: int) -> int:
        """Processes in the run: the workers, plus one server for parameter-server modes."""
        return workers + 1 if self.has_server else workers

    def role(self, rank: int) -> str:
        """'server' for rank 0 of a parameter-server mode, otherwise 'worker'."""
        return "server" if self.has_server and rank == 0 else "worker"

    def worker_index(self, rank: int) -> int:
        """The 0-based worker number of a rank (data shard and delay index)."""
        return rank - 1 if self.has_server else rank

    def strategy(self) -> Callable[..., dict[str, Any]]:
        """Import and return the strategy's ``run(ctx)`` function (it returns what its rank
        reports at the end: the final parameters on the rank that holds the model)."""
        return importlib.import_module(self.module).run


_PS_LOSS = frozenset({"on_worker_loss"})

#: Every mode, in the order the panel and ``--help`` show them. Headers: sync sends (sample
#: count, loss, step) with each gradient and its replies carry the next step (for backup
#: workers); async sends (sample count, loss, version the gradient was computed on) and
#: replies the version, and ssp sends async's messages; all-reduce reduces (sample count,
#: sample count × loss) with the gradient; local SGD reduces (samples since the last
#: average, their summed loss) with the model.
MODES: Mapping[str, Mode] = MappingProxyType({
    "sync": Mode(
        "sync", "sync",
        "synchronous parameter server: the server waits for every worker",
        "ddlkit.strategies.sync_ps", has_server=True, header=Header(push=3, pull=1),
        pattern=CommPattern.PS_EVERY_STEP,
        settings=_PS_LOSS | {"compression", "backup_workers"}),
    "async": Mode(
        "async", "async",
        "asynchronous parameter server: the server applies each gradient on arrival",
        "ddlkit.strategies.async_ps", has_server=True, header=Header(push=3, pull=1),
        pattern=CommPattern.PS_PER_GRADIENT, settings=_PS_LOSS,
        lr_per_gradient=True, survives_worker_loss=True),
    "ssp": Mode(
        "ssp", "SSP",
        "stale-synchronous parameter server: no worker runs more than s steps ahead",
        "ddlkit.strategies.ssp", has_server=True, header=Header(push=3, pull=1),
        pattern=CommPattern.PS_PER_GRADIENT, settings=_PS_LOSS | {"staleness_bound"},
        lr_per_gradient=True),
    "allreduce": Mode(
        "allreduce", "all-reduce",
        "decentralised: workers average gradients with an all-reduce",
        "ddlkit.strategies.allreduce", has_server=False, header=Header(push=2, pull=0),
        pattern=CommPattern.ALLREDUCE_EVERY_STEP,
        settings=frozenset({"allreduce_impl", "compression"})),
    "local-sgd": Mode(
        "local-sgd", "local SGD",
        "local SGD: workers step alone and average models every H steps",
        "ddlkit.strategies.local_sgd", has_server=False, header=Header(push=2, pull=0),
        pattern=CommPattern.ALLREDUCE_EVERY_H,
        settings=frozenset({"allreduce_impl", "local_steps"})),
})

#: every mode-specific setting: a field some modes read and others do not
MODE_SETTINGS: frozenset[str] = frozenset().union(*(m.settings for m in MODES.values()))


def modes_with(setting: str) -> tuple[str, ...]:
    """The names of the modes that read ``setting``, in registry order."""
    return tuple(name for name, mode in MODES.items() if setting in mode.settings)
