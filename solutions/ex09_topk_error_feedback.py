"""Exercise 9: top-k gradient compression with error feedback.

Top-k sparsification (Aji & Heafield 2017; Lin et al. 2018) sends only the k entries of a
gradient with the largest magnitude |g_i|, as k values and their k indices. On its own it
loses everything else. Error feedback (Seide et al. 2014; analysed by Stich et al. 2018) keeps
what was not sent in a residual e and adds it to the next gradient:

    p = g + e                      (the corrected gradient)
    send the k largest |p_i|       (values p_i and indices i)
    e ← p − (what was sent)        (zero where sent, p_i elsewhere)

Nothing is lost, only delayed: what is sent plus the new residual equals g plus the old
residual, exactly. The grader compares your choice with ``torch.topk``.
"""
from __future__ import annotations

import torch


def topk_with_error_feedback(grad: torch.Tensor, residual: torch.Tensor, k: int
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Compress ``grad`` + ``residual`` to its k largest-magnitude entries.

    ``grad`` and ``residual`` are 1-D tensors of the same length and dtype; 1 ≤ k ≤ length.
    Returns ``(values, indices, new_residual)``: the k sent values (with their signs), their
    positions (an integer tensor, in any order), and the residual to use next step. Leaves
    ``grad`` and ``residual`` unchanged.
    """
    # BEGIN SOLUTION
    # HINT: form p = grad + residual, find the k positions of largest |p_i| (for example by
    #   sorting |p| in descending order), send p at those positions, and keep p with those
    #   positions set to zero as the new residual.
    corrected = grad + residual
    indices = torch.argsort(corrected.abs(), descending=True)[:k]
    values = corrected[indices]
    new_residual = corrected.clone()
    new_residual[indices] = 0
    return values, indices, new_residual
    # END SOLUTION
