"""Exercise 10: the server's step with backup workers.

Chen et al. (2016, "Revisiting distributed synchronous SGD") run N workers but let the
server step as soon as N − b gradients have arrived, b being the number of *backup
workers*. The b gradients that arrive last are dropped: the server does not wait for them.
The gradients it keeps are averaged weighted by sample count (exercise 1), so the update
is the gradient of the union of the kept batches.

You write what the server does with one step's messages, given as a list of arrivals.
"""
from __future__ import annotations

import torch


def backup_step(arrivals: list[tuple[float, int, int, torch.Tensor]],
                backup: int) -> tuple[torch.Tensor, list[int], list[int]]:
    """Take the first N − b arrivals, average their gradients, say which were dropped.

    ``arrivals`` holds one message per worker, ``(arrival time in s, rank, samples,
    mean gradient)``, in no particular order; N = ``len(arrivals)`` and b = ``backup``
    (0 ≤ b < N). Use the N − b messages that arrived first (on equal times, the lower
    rank first). Returns ``(average, applied, dropped)``: the sample-weighted mean
    Σ nᵢ gᵢ / Σ nᵢ of the used gradients (a new tensor), and the ranks used and dropped,
    each sorted. Leaves ``arrivals`` and its tensors unchanged.
    """
    # HINT: sort a copy of the arrivals by (time, rank) and keep the first N − b; then
    #   weight each kept gradient by its sample count, add up, divide by the total.
    raise NotImplementedError("Exercise 10: implement backup_step()")
