"""Exercise 5: the asynchronous parameter server's loop, with staleness tracking.

The server (rank 0) no longer waits for every worker (Dean et al. 2012, "Downpour SGD").
It applies each gradient the moment it arrives, from whichever worker sent it, and answers
that worker alone with the current parameters. The price: a gradient may have been
computed on parameters that are already some updates old. Number the parameters by
version, the count of updates applied so far. A worker tags each gradient with the version
it computed it on, and the server records

    staleness = version when the gradient arrives − version the gradient was computed on.

The grader's workers are ddlkit code; you write the server's loop.
"""
from __future__ import annotations

import torch

from ddlkit.comm import Communicator

STOP = -1  # the version in a reply that tells a worker to stop


def async_server(comm: Communicator, params: torch.Tensor, workers: int, updates: int,
                 lr: float) -> list[int]:
    """Serve ``workers`` workers until ``updates`` gradients have been applied; in place.

    A worker's message has ``len(params) + 1`` values: its gradient, then the version it
    was computed on. Receive from any worker (``comm.recv(inbox)``, which returns the
    sender). While fewer than ``updates`` updates are applied: record the staleness, take
    an SGD step ``params ← params − lr·gradient`` and count the new version. Answer every
    message, to its sender only, with ``len(params) + 1`` values: the parameters, then the
    current version, or ``STOP`` once ``updates`` updates are applied (a late gradient is
    then not applied). Return when every worker has been told to stop. Returns the
    staleness of each applied update, in the order applied.
    """
    # HINT: keep version (updates applied so far) and the number of workers not yet told to
    #   stop; while any remain: sender = comm.recv(inbox), apply the gradient if the budget
    #   allows, then comm.send(reply, sender).
    raise NotImplementedError("Exercise 5: implement async_server()")
