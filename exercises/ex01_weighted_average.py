"""Exercise 1: average the gradients of unequal shards correctly.

Worker i computes g_i, the mean gradient of the loss over its own batch of n_i samples.
The gradient of the mean loss over all the batches together (the large batch) is

    g = (n_1 g_1 + n_2 g_2 + ... + n_N g_N) / (n_1 + n_2 + ... + n_N).

The plain mean (g_1 + ... + g_N) / N gives every worker the same say, however few samples
it used: it is right only when all n_i are equal.
"""
from __future__ import annotations

import torch


def weighted_average(grads: list[torch.Tensor], counts: list[int]) -> torch.Tensor:
    """The mean gradient over the union of all workers' batches.

    ``grads[i]`` is worker i's mean gradient over its ``counts[i]`` samples; all have the
    same shape and dtype. Returns a new tensor of that shape and dtype, and leaves
    ``grads`` unchanged.
    """
    # HINT: worker i's gradient stands for counts[i] samples: weight it by counts[i],
    #   add up, and divide by the total number of samples.
    raise NotImplementedError("Exercise 1: implement weighted_average()")
