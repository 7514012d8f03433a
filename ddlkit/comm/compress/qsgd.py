"""QSGD: stochastic quantisation of a gradient to a few bits per entry.

Alistarh et al. 2017 ("QSGD: communication-efficient SGD via gradient quantization and
encoding", NIPS), §3.1: with s levels, entry g_i becomes

    Q(g_i) = ‖g‖₂ · sign(g_i) · ξ_i / s,

where ξ_i is |g_i|/‖g‖₂·s rounded down or up at random, up with probability equal to the
fractional part. Then E[ξ_i] = |g_i|/‖g‖₂·s, so E[Q(g)] = g: the quantised gradient is
unbiased, and needs no error feedback.

Level count: b bits hold a signed integer in [−(2^(b−1)−1), 2^(b−1)−1], so
s = 2^(b−1) − 1 levels per sign (b = 2: s = 1, the ternary {−1, 0, 1}·‖g‖ of TernGrad;
b = 8: s = 127). The signed levels are stored in the smallest integer type that holds
them, int8 for b ≤ 8 and int16 up to 16, so the message is M·⌈b/8⌉ bytes plus one float
for the norm. (The paper's Elias coding would shrink it further; a fixed size is what
gloo's fixed receive buffers need.) Randomness comes from a generator seeded with
(seed, worker, step), the worker being its index among the workers: runs are
reproducible and no two workers or steps share draws.
"""
from __future__ import annotations

import numpy as np
import torch

from ddlkit.comm.compress.compressor import Compressor


def levels(bits: int) -> int:
    """s = 2^(b−1) − 1, the number of quantisation levels per sign for ``bits`` bits."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 16:
        raise ValueError(f"quant_bits: {bits!r} is not allowed; a whole number from 2 to 16 "
                         "(one bit holds the sign)")
    return 2 ** (bits - 1) - 1


def level_dtype(bits: int) -> torch.dtype:
    """The smallest signed integer type holding b-bit levels: int8 or int16."""
    levels(bits)
    return torch.int8 if bits <= 8 else torch.int16


def draw_seed(seed: int, worker: int, step: int) -> int:
    """A 63-bit seed for (seed, worker, step), from numpy's SeedSequence (well mixed)."""
    return int(np.random.SeedSequence([seed, worker, step]).generate_state(2, np.uint64)[0] >> 1)


class QSGD(Compressor):
    """b-bit stochastic quantisation; message = ‖g‖ (one float) then M signed levels."""

    def __init__(self, numel: int, bits: int, dtype: torch.dtype = torch.float32,
                 seed: int = 0, worker: int = 0) -> None:
        super().__init__(numel, dtype)
        self.bits = bits
        self.s = levels(bits)
        self.level_dtype = level_dtype(bits)
        self.seed = seed
        self.worker = worker

    @property
    def payload_bytes(self) -> int:
        width = torch.empty((), dtype=self.level_dtype).element_size()
        return self.itemsize + self.numel * width

    def encode(self, grad: torch.Tensor, out: torch.Tensor, step: int = 0) -> torch.Tensor:
        self._check(grad, out)
        norm_view, level_view = self._views(out)
        norm = torch.linalg.vector_norm(grad)
        norm_view[0] = norm
        if float(norm) == 0.0:
            level_view.zero_()
        else:
            gen = torch.Generator().manual_seed(draw_seed(self.seed, self.worker, step))
            scaled = (grad.abs() / norm * self.s).clamp_(max=self.s)  # ≤ s despite rounding
            low = scaled.floor()
            up = torch.rand(self.numel, generator=gen, dtype=self.dtype) < scaled - low
            level_view.copy_((low + up) * grad.sign())
        return self.decode(out, torch.empty_like(grad))

    def decode(self, message: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        norm_view, level_view = self._views(message)
        torch.mul(level_view.to(self.dtype), norm_view[0] / self.s, out=out)
        return out

    def _views(self, message: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (message[:self.itemsize].view(self.dtype),
                message[self.itemsize:].view(self.level_dtype))
