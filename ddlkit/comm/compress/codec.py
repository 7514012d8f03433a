"""A rank's gradient message: which compressor a run asks for, and the message's framing.

Two compressors (:mod:`.compressor` defines the interface) are implemented, one file each:

- :class:`~ddlkit.comm.compress.topk.TopK`: the k largest-magnitude entries as (values, int32
  indices) (Aji & Heafield 2017; Lin et al. 2018);
- :class:`~ddlkit.comm.compress.qsgd.QSGD`: every entry stochastically rounded to one of a few
  levels of ‖g‖, packed into int8 or int16, plus the norm (Alistarh et al. 2017).

:class:`ErrorFeedback` is the worker's memory of what it did not send (Seide et al. 2014;
analysed by Stich et al. 2018 and Karimireddy et al. 2019): e ← (g + e) − C(g + e).
:class:`GradientCodec` frames one rank's message (a small float header, then the payload) for
the strategies.

Messages must have the same size every step: gloo receives into a buffer of fixed size
and aborts the process if a message is larger. Top-k with a fixed k and QSGD both are.
"""
from __future__ import annotations

from typing import Protocol

import torch

from ddlkit.comm.compress.compressor import Compressor, ErrorFeedback
from ddlkit.comm.compress.qsgd import QSGD
from ddlkit.comm.compress.topk import TopK


class CompressionSettings(Protocol):
    """What a codec reads from a run's settings (:class:`~ddlkit.config.Experiment` has
    these fields; the communication layer does not need to know the rest)."""

    @property
    def compression(self) -> str: ...
    @property
    def compress_ratio(self) -> float: ...
    @property
    def error_feedback(self) -> bool: ...
    @property
    def quant_bits(self) -> int: ...
    @property
    def seed(self) -> int: ...


def make_compressor(exp: CompressionSettings, numel: int, dtype: torch.dtype = torch.float32,
                    worker: int = 0) -> Compressor | None:
    """The compressor ``exp`` asks for on worker ``worker`` (its index among the workers:
    QSGD seeds its draws with it), or None for ``compression="none"``."""
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

    def __init__(self, exp: CompressionSettings, numel: int, dtype: torch.dtype, header: int,
                 worker: int = 0) -> None:
        self.numel = numel
        self.dtype = dtype
        self.header_len = header
        self.compressor = make_compressor(exp, numel, dtype, worker)
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
