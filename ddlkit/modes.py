"""The one place that maps a mode name to its strategy and its process layout.

Later strategies (bounded staleness, local SGD, ...) register here and nowhere else.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping


@dataclass(frozen=True)
class Mode:
    """A training mode: its name, whether rank 0 is a server, and where its code lives."""

    name: str
    has_server: bool
    module: str
    summary: str

    def world_size(self, workers: int) -> int:
        """Processes in the run: the workers, plus one server for parameter-server modes."""
        return workers + 1 if self.has_server else workers

    def role(self, rank: int) -> str:
        """'server' for rank 0 of a parameter-server mode, otherwise 'worker'."""
        return "server" if self.has_server and rank == 0 else "worker"

    def worker_index(self, rank: int) -> int:
        """The 0-based worker number of a rank (data shard and delay index)."""
        return rank - 1 if self.has_server else rank

    def strategy(self) -> Callable[..., None]:
        """Import and return the strategy's ``run(ctx)`` function."""
        return importlib.import_module(self.module).run


MODES: Mapping[str, Mode] = MappingProxyType({
    "sync": Mode("sync", True, "ddlkit.strategies.sync_ps",
                 "synchronous parameter server: the server waits for every worker"),
    "async": Mode("async", True, "ddlkit.strategies.async_ps",
                  "asynchronous parameter server: the server applies each gradient on arrival"),
    "ssp": Mode("ssp", True, "ddlkit.strategies.ssp",
                "stale-synchronous parameter server: no worker runs more than s steps ahead"),
    "allreduce": Mode("allreduce", False, "ddlkit.strategies.allreduce",
                      "decentralised: workers average gradients with an all-reduce"),
    "local-sgd": Mode("local-sgd", False, "ddlkit.strategies.local_sgd",
                      "local SGD: workers step alone and average models every H steps"),
})
