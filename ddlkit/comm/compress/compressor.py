"""The compressor interface, and error feedback, which works with any compressor.

A :class:`Compressor` turns M gradient entries into ``payload_bytes`` bytes
(:meth:`~Compressor.encode`) and those bytes into a dense gradient again
(:meth:`~Compressor.decode`). :class:`ErrorFeedback` is the worker's memory of what it
did not send (Seide et al. 2014; analysed by Stich et al. 2018, Karimireddy et al. 2019):
e ← (g + e) − C(g + e).

Messages must have the same size every step: gloo receives into a buffer of fixed size
and aborts the process if a message is larger. Top-k with a fixed k and QSGD both are.
"""
from __future__ import annotations

import torch


class Compressor:
    """Base class: M entries of ``dtype`` <-> a uint8 message of ``payload_bytes`` bytes."""

    def __init__(self, numel: int, dtype: torch.dtype = torch.float32) -> None:
        self.numel = numel
        self.dtype = dtype
        self.itemsize = torch.empty((), dtype=dtype).element_size()

    @property
    def payload_bytes(self) -> int:
        """Bytes of one message (the same every step)."""
        raise NotImplementedError

    def encode(self, grad: torch.Tensor, out: torch.Tensor, step: int = 0) -> torch.Tensor:
        """Write the message for ``grad`` into ``out`` (uint8, ``payload_bytes`` long).

        Returns C(grad) as a dense tensor: exactly what the receiver will decode (error
        feedback needs it). ``step`` seeds any randomness.
        """
        raise NotImplementedError

    def decode(self, message: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Write the dense gradient a message stands for into ``out``; returns ``out``."""
        raise NotImplementedError

    def new_message(self) -> torch.Tensor:
        """An empty message buffer of the right size."""
        return torch.empty(self.payload_bytes, dtype=torch.uint8)

    def _check(self, grad: torch.Tensor, out: torch.Tensor) -> None:
        if grad.shape != (self.numel,) or grad.dtype != self.dtype:
            raise ValueError(f"gradient of shape {tuple(grad.shape)} and dtype {grad.dtype}; "
                             f"this compressor takes ({self.numel},) {self.dtype}")
        if out.dtype != torch.uint8 or out.numel() != self.payload_bytes:
            raise ValueError(f"message buffer of {out.numel()} {out.dtype}; it must be "
                             f"{self.payload_bytes} uint8")


class ErrorFeedback:
    """A worker's residual memory e (Seide et al. 2014; Karimireddy et al. 2019, Alg. 2).

    Each step the worker compresses g + e instead of g, and keeps what was not sent:
    e ← (g + e) − C(g + e). Nothing is lost for good, only delayed; for top-k the sent
    part and the residual split g + e exactly (each entry is in one or the other).
    """

    def __init__(self, numel: int, dtype: torch.dtype = torch.float32) -> None:
        self.residual = torch.zeros(numel, dtype=dtype)

    def encode(self, compressor: Compressor, grad: torch.Tensor, out: torch.Tensor,
               step: int = 0) -> torch.Tensor:
        """Compress ``grad`` + residual into ``out``, update the residual; return C(·)."""
        corrected = grad + self.residual
        sent = compressor.encode(corrected, out, step)
        torch.sub(corrected, sent, out=self.residual)
        return sent
