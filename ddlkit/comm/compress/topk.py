"""Top-k sparsification: send only the k largest-magnitude gradient entries.

Aji & Heafield 2017 ("Sparse communication for distributed gradient descent", EMNLP)
and Lin et al. 2018 ("Deep Gradient Compression", ICLR) keep k = ⌈ratio·M⌉ of the M
entries of a gradient, those of largest |g_i|, and send them as (values, indices). The
message has a fixed size, k·(itemsize + 4) bytes (int32 indices), whatever the gradient,
so gloo can receive it into a fixed buffer. Everything else is dropped, which biases the
update; error feedback (:class:`~ddlkit.comm.compress.compressor.ErrorFeedback`) puts the dropped
part back into the next step's gradient.
"""
from __future__ import annotations

import math

import torch

from ddlkit.comm.compress.compressor import Compressor

INDEX_DTYPE = torch.int32
INDEX_BYTES = 4


def topk_count(numel: int, ratio: float) -> int:
    """k = ⌈ratio·M⌉, at least 1 and at most M.

    The product is rounded to 9 decimals first so that, say, 0.07·100 = 7.000000000000001
    gives 7 and not 8.
    """
    if numel < 1:
        raise ValueError(f"numel: {numel!r} is not allowed; a whole number ≥ 1")
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"compress_ratio: {ratio!r} is not allowed; a fraction in (0, 1]")
    return max(1, min(numel, math.ceil(round(ratio * numel, 9))))


class TopK(Compressor):
    """Keep the k entries of largest magnitude; message = k values then k int32 indices.

    Ties are broken by ``torch.topk`` (deterministically on CPU), and the indices are sent
    in ascending order so the message does not depend on how topk orders its output.
    """

    def __init__(self, numel: int, ratio: float, dtype: torch.dtype = torch.float32) -> None:
        super().__init__(numel, dtype)
        self.ratio = ratio
        self.k = topk_count(numel, ratio)

    @property
    def payload_bytes(self) -> int:
        return self.k * (self.itemsize + INDEX_BYTES)

    def encode(self, grad: torch.Tensor, out: torch.Tensor, step: int = 0) -> torch.Tensor:
        self._check(grad, out)
        idx = torch.topk(grad.abs(), self.k, sorted=False).indices.sort().values
        values, indices = self._views(out)
        torch.index_select(grad, 0, idx, out=values)
        indices.copy_(idx)
        sent = torch.zeros_like(grad)
        sent[idx] = values
        return sent

    def decode(self, message: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        values, indices = self._views(message)
        out.zero_()
        out[indices.long()] = values
        return out

    def _views(self, message: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        split = self.k * self.itemsize
        return message[:split].view(self.dtype), message[split:].view(INDEX_DTYPE)
