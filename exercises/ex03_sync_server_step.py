"""Exercise 3: the server step of a synchronous parameter server.

Rank 0 is the server (参数服务器); ranks 1 … N are workers. In every step each worker
sends the server one message, its mean gradient followed by the number of samples it
used. The server waits for all N messages, averages the gradients weighted by sample
count (exercise 1), takes one SGD step, and sends the new parameters back to every worker.
The grader's workers are ddlkit code; you write the server's side.
"""
from __future__ import annotations

import torch

from ddlkit.comm import Communicator


def server_step(comm: Communicator, params: torch.Tensor, inbox: list[torch.Tensor],
                workers: int, lr: float) -> None:
    """One synchronous step on the server: receive, aggregate, update, send. In place.

    Worker w (rank w, 1 ≤ w ≤ ``workers``) sends ``len(params) + 1`` values: its mean
    gradient, then its sample count. Receive it into ``inbox[w - 1]`` (already that size).
    Then set ``params ← params − lr · (Σ n_w g_w / Σ n_w)`` in place, and send ``params``
    to every worker.
    """
    # HINT: comm.recv(inbox[w - 1], w) for every worker; the count is the last value.
    #   Update params in place (params.sub_(...)), then comm.send(params, w) to each worker.
    raise NotImplementedError("Exercise 3: implement server_step()")
