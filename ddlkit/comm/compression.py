"""Gradient compression: a flat gradient becomes a small fixed-size message, and back.

A :class:`Compressor` turns M gradient entries into ``payload_bytes`` bytes
(:meth:`~Compressor.encode`) and those bytes into a dense gradient again
(:meth:`~Compressor.decode`). Two are implemented, one file each:

- :class:`~ddlkit.comm.topk.TopK`: the k largest-magnitude entries as (values, int32
  indices) (Aji & Heafield 2017; Lin et al. 2018);
- :class:`~ddlkit.comm.qsgd.QSGD`: every entry stochastically rounded to one of a few
  levels of ‖g‖, packed into int8 or int16, plus the norm (Alistarh et al. 2017).

:class:`ErrorFeedback` is the worker's memory of what it did not send (Stich et al. 2018;
Karimireddy et al. 2019): e ← (g + e) − C(g + e). :class:`GradientCodec` frames one
rank's message (a small float header, then the payload) for the strategies.

Messages must have the same size every step: gloo receives into a buffer of fixed size
and aborts the process if a message is larger. Top-k with a fixed k and QSGD both are.
"""
from __future__ import annotations

import torch

from ddlkit.config import Experiment


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
    """A worker's residual memory e (Stich et al. 2018; Karimireddy et al. 2019, Alg. 2).

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


def make_compressor(exp: Experiment, numel: int, worker: int = 0) -> Compressor | None:
    """The compressor ``exp`` asks for on worker ``worker`` (its index among the workers:
    QSGD seeds its draws with it), or None for ``compression="none"``."""
    from ddlkit.comm.qsgd import QSGD
    from ddlkit.comm.topk import TopK
    from ddlkit.models import DTYPES

    dtype = DTYPES[exp.dtype]
    if exp.compression == "none":
        return None
    if exp.compression == "topk":
        return TopK(numel, exp.compress_ratio, dtype)
    if exp.compression == "qsgd":
        return QSGD(numel, exp.quant_bits, dtype, seed=exp.seed, worker=worker)
    raise ValueError(f"compression: {exp.compression!r} is not allowed; use 'none', 'topk' "
                     "or 'qsgd'")


class GradientCodec:
    """One rank's gradient message: ``header`` floats (sample count, loss) and the gradient.

    Uncompressed, the message is the float buffer strategies always used (gradient, then
    header), and encoding and decoding cost nothing. Compressed, it is a uint8 buffer:
    the header as floats, then the compressor's payload. Error feedback applies to top-k
    only: QSGD is unbiased and needs no memory (``error_feedback`` is ignored for it).
    ``worker`` is the worker's index (0 … N−1), the same in every mode, so QSGD draws the
    same random numbers on a parameter server and on all-reduce.
    """

    def __init__(self, exp: Experiment, numel: int, dtype: torch.dtype, header: int,
                 worker: int = 0) -> None:
        self.numel = numel
        self.dtype = dtype
        self.header_len = header
        self.compressor = make_compressor(exp, numel, worker)
        self.itemsize = torch.empty((), dtype=dtype).element_size()
        self.memory = (ErrorFeedback(numel, dtype)
                       if self.compressor is not None and exp.compression == "topk"
                       and exp.error_feedback else None)
        self._grad = torch.zeros(numel, dtype=dtype)

    @property
    def payload_bytes(self) -> int:
        """Gradient bytes per message (the header excluded)."""
        if self.compressor is None:
            return self.numel * self.itemsize
        return self.compressor.payload_bytes

    def buffer(self) -> torch.Tensor:
        """A message buffer (send or receive)."""
        if self.compressor is None:
            return torch.empty(self.numel + self.header_len, dtype=self.dtype)
        return torch.empty(self.header_len * self.itemsize + self.payload_bytes,
                           dtype=torch.uint8)

    def header(self, buf: torch.Tensor) -> torch.Tensor:
        """The header floats of a message (a view: write to it to set them)."""
        if self.compressor is None:
            return buf[self.numel:]
        return buf[:self.header_len * self.itemsize].view(self.dtype)

    def gradient_slot(self, buf: torch.Tensor) -> torch.Tensor:
        """Where a worker computes its dense gradient before :meth:`encode`."""
        return buf[:self.numel] if self.compressor is None else self._grad

    def encode(self, buf: torch.Tensor, step: int) -> None:
        """Compress the gradient in :meth:`gradient_slot` into ``buf`` (after error feedback)."""
        if self.compressor is None:
            return
        payload = buf[self.header_len * self.itemsize:]
        if self.memory is not None:
            self.memory.encode(self.compressor, self._grad, payload, step)
        else:
            self.compressor.encode(self._grad, payload, step)

    def decode(self, buf: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The dense gradient of a received message: a view of ``buf`` when uncompressed,
        else decoded into ``out``."""
        if self.compressor is None:
            return buf[:self.numel]
        return self.compressor.decode(buf[self.header_len * self.itemsize:], out)
