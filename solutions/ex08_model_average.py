"""Exercise 8: local SGD's model average, weighted by samples.

In local SGD (FedAvg, McMahan et al. 2017) every worker trains its own copy of the model
for H steps, then all workers replace their models by the average

    θ = (n_1 θ_1 + n_2 θ_2 + ... + n_N θ_N) / (n_1 + n_2 + ... + n_N),

where n_i is the number of samples worker i used since the last average. The plain mean
(θ_1 + ... + θ_N) / N gives a worker that saw 5 samples as much say as one that saw 500.

Every rank calls ``average_models`` at the same time; ``comm.all_reduce(t)`` sums a tensor
over all ranks, in place. One all-reduce is enough: put the count in the same buffer.
"""
from __future__ import annotations

import torch

from ddlkit.comm import Communicator


def average_models(comm: Communicator, model: torch.Tensor, samples: int) -> int:
    """Replace ``model`` (1-D, this rank's parameters) in place by Σ n_i θ_i / Σ n_i over
    all ranks, where this rank's n_i is ``samples``. Returns Σ n_i.

    Use one ``comm.all_reduce``; keep ``model``'s dtype.
    """
    # BEGIN SOLUTION
    # HINT: build one buffer of M + 1 values: samples × model, then samples. After
    #   comm.all_reduce(buffer) every rank holds Σ n_i θ_i and Σ n_i; divide, and copy the
    #   result into model.
    m = model.numel()
    buffer = torch.empty(m + 1, dtype=torch.float64)
    buffer[:m] = model.to(torch.float64) * samples
    buffer[m] = samples
    comm.all_reduce(buffer)
    total = buffer[m].item()
    model.copy_(buffer[:m] / total)
    return int(total)
    # END SOLUTION
