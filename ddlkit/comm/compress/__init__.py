"""Gradient compression: a flat gradient becomes a small fixed-size message, and back.

:mod:`.compressor` (the interface and error feedback), :mod:`.topk` and :mod:`.qsgd`
(one compressor each) and :mod:`.codec` (a rank's framed message).
"""
from ddlkit.comm.compress.codec import GradientCodec, make_compressor
from ddlkit.comm.compress.compressor import Compressor, ErrorFeedback
from ddlkit.comm.compress.qsgd import QSGD
from ddlkit.comm.compress.topk import TopK

__all__ = ["Compressor", "ErrorFeedback", "GradientCodec", "QSGD", "TopK", "make_compressor"]
