"""Communication: the instrumented communicator, its event log, and hand-written collectives."""
from typing import Callable

import torch

from ddlkit.comm.communicator import Communicator, Handle
from ddlkit.comm.doubling import doubling_all_reduce
from ddlkit.comm.events import EVENT_FIELDS, Event, Recorder
from ddlkit.comm.ring import chunk_sizes, ring_all_reduce

__all__ = ["Communicator", "Handle", "Event", "EVENT_FIELDS", "Recorder", "chunk_sizes",
           "doubling_all_reduce", "reducer", "ring_all_reduce"]


def reducer(comm: Communicator, impl: str) -> Callable[[torch.Tensor], None]:
    """The sum all-reduce named by ``Experiment.allreduce_impl``, bound to ``comm``:
    ``ring`` (hand-written, bandwidth-optimal), ``doubling`` (hand-written,
    latency-optimal) or ``gloo`` (gloo's own)."""
    if impl == "gloo":
        return comm.all_reduce
    if impl == "ring":
        return lambda t: ring_all_reduce(comm, t)
    if impl == "doubling":
        return lambda t: doubling_all_reduce(comm, t)
    raise ValueError(f"allreduce_impl: {impl!r} is not allowed; one of 'ring', 'doubling', "
                     f"'gloo'")
