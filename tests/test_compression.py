"""Gradient compression: top-k with error feedback, QSGD, and their byte counts.

References are independent of the code under test: numpy's argsort picks the top-k,
the unbiasedness of QSGD is checked statistically, ratio 1.0 must reproduce an
uncompressed run, counted bytes must equal the cost formulas and hand-computed numbers,
and the instrumented all-gather must equal ``dist.all_gather``.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

import ddlkit
from ddlkit import plots
from ddlkit.analysis import cost
from ddlkit.comm.compress import ErrorFeedback, GradientCodec
from ddlkit.comm.compress.qsgd import QSGD, levels
from ddlkit.comm.compress.topk import TopK, topk_count
from ddlkit.errors import ConfigError
from ddlkit.runtime import run_ranks
from ddlkit.tools.checks import all_gather_vs_gloo


def gradient(m: int = 200, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(m, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def numpy_topk(g: torch.Tensor, k: int) -> np.ndarray:
    """The dense top-k of ``g`` computed with numpy's argsort (no ties in random data)."""
    a = g.numpy()
    keep = np.argsort(-np.abs(a), kind="stable")[:k]
    out = np.zeros_like(a)
    out[keep] = a[keep]
    return out


# -- top-k ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("ratio", [0.01, 0.1, 0.5, 1.0])
def test_topk_round_trip_keeps_the_k_largest(ratio: float, dtype: torch.dtype) -> None:
    g = gradient(300, dtype=dtype)
    comp = TopK(300, ratio, dtype)
    msg = comp.new_message()
    sent = comp.encode(g, msg)
    assert comp.k == math.ceil(ratio * 300)
    assert msg.numel() == comp.payload_bytes == comp.k * (g.element_size() + 4)
    decoded = comp.decode(msg, torch.empty_like(g))
    assert torch.equal(decoded, sent)
    np.testing.assert_array_equal(decoded.numpy(), numpy_topk(g, comp.k))


def test_topk_count_rounds_up_without_float_noise() -> None:
    assert topk_count(100, 0.07) == 7  # 0.07 * 100 = 7.000000000000001 in floating point
    assert topk_count(4810, 0.01) == 49
    assert topk_count(10, 1e-6) == 1
    assert topk_count(10, 1.0) == 10


def test_error_feedback_sent_plus_residual_is_exact() -> None:
    m = 500
    comp, memory = TopK(m, 0.02, torch.float32), ErrorFeedback(m, torch.float32)
    msg = comp.new_message()
    for step in range(1, 30):
        g = gradient(m, seed=step)
        before = memory.residual.clone()
        sent = memory.encode(comp, g, msg, step)
        assert torch.equal(sent + memory.residual, g + before), step  # bit for bit
        assert int((sent != 0).sum()) == comp.k
        assert torch.equal(memory.residual[sent != 0], torch.zeros(comp.k))


def test_error_feedback_sends_everything_eventually() -> None:
    """A constant gradient: what top-k drops comes back until every entry has been sent."""
    m = 40
    comp, memory = TopK(m, 0.1, torch.float64), ErrorFeedback(m, torch.float64)
    g = gradient(m, dtype=torch.float64)
    total = torch.zeros(m, dtype=torch.float64)
    steps = 200
    for step in range(steps):
        total += memory.encode(comp, g, comp.new_message(), step)
    assert torch.allclose(total + memory.residual, steps * g)
    assert float((total / steps - g).abs().max()) < 0.1 * float(g.abs().max())


# -- QSGD -----------------------------------------------------------------------------------
@pytest.mark.parametrize("bits,dtype,width", [(2, torch.int8, 1), (8, torch.int8, 1),
                                              (9, torch.int16, 2), (16, torch.int16, 2)])
def test_qsgd_message_is_packed_in_the_smallest_integer(bits: int, dtype: torch.dtype,
                                                        width: int) -> None:
    comp = QSGD(300, bits, torch.float32)
    assert comp.s == 2 ** (bits - 1) - 1
    assert comp.level_dtype == dtype
    assert comp.payload_bytes == 300 * width + 4
    msg = comp.new_message()
    comp.encode(gradient(300), msg, step=1)
    lv = msg[4:].view(dtype)
    assert int(lv.abs().max()) <= comp.s


@pytest.mark.parametrize("bits", [2, 4])
def test_qsgd_is_unbiased(bits: int) -> None:
    """The mean of many seeded draws approaches g: within 5 standard errors everywhere."""
    g = gradient(50, seed=3, dtype=torch.float64)
    comp = QSGD(50, bits, torch.float64, seed=11, worker=2)
    draws = 4000
    msg = comp.new_message()
    total = torch.zeros_like(g)
    for step in range(draws):
        total += comp.encode(g, msg, step)
    mean = total / draws
    # each draw is within one level, norm/s, of g_i, so its std is at most norm/(2s)
    stderr = float(torch.linalg.vector_norm(g)) / (2 * comp.s) / math.sqrt(draws)
    assert float((mean - g).abs().max()) < 5 * stderr
    # and one draw alone is clearly not g (the test could tell a biased rounding apart)
    one = comp.encode(g, msg, 0)
    assert float((one - g).abs().max()) > 10 * stderr


def test_qsgd_is_deterministic_per_seed_worker_and_step() -> None:
    g = gradient(100)
    msgs = {}
    for seed, worker, step in [(0, 1, 5), (0, 1, 5), (1, 1, 5), (0, 2, 5), (0, 1, 6)]:
        msg = QSGD(100, 4, seed=seed, worker=worker).new_message()
        QSGD(100, 4, seed=seed, worker=worker).encode(g, msg, step)
        msgs.setdefault((seed, worker, step), []).append(msg)
    assert torch.equal(*msgs[(0, 1, 5)])
    others = [m[0] for key, m in msgs.items() if key != (0, 1, 5)]
    assert all(not torch.equal(msgs[(0, 1, 5)][0], o) for o in others)


def test_qsgd_16_bit_is_close_to_exact_and_zero_stays_zero() -> None:
    g = gradient(1000, dtype=torch.float64)
    comp = QSGD(1000, 16, torch.float64)
    msg = comp.new_message()
    q = comp.encode(g, msg, 1)
    assert float((q - g).abs().max()) <= float(torch.linalg.vector_norm(g)) / levels(16)
    assert float((q - g).abs().max()) < 1e-3
    zero = comp.encode(torch.zeros(1000, dtype=torch.float64), msg, 2)
    assert torch.equal(zero, torch.zeros(1000, dtype=torch.float64))


def test_quant_bits_must_leave_room_for_the_sign() -> None:
    with pytest.raises(ConfigError, match="quant_bits"):
        ddlkit.Experiment(compression="qsgd", quant_bits=1)
    with pytest.raises(ValueError, match="quant_bits"):
        levels(1)


def test_codec_frames_header_and_payload() -> None:
    exp = ddlkit.Experiment(compression="topk", compress_ratio=0.1)
    codec = GradientCodec(exp, 50, torch.float32, header=2, worker=1)
    buf = codec.buffer()
    assert buf.dtype == torch.uint8 and buf.numel() == 2 * 4 + codec.payload_bytes
    codec.gradient_slot(buf).copy_(gradient(50))
    codec.encode(buf, step=1)
    codec.header(buf)[:] = torch.tensor([32.0, 1.5])
    assert codec.header(buf).tolist() == [32.0, 1.5]
    out = codec.decode(buf, torch.empty(50))
    np.testing.assert_array_equal(out.numpy(), numpy_topk(gradient(50), 5))


# -- whole runs -----------------------------------------------------------------------------
BASE = ddlkit.Experiment(workers=2, dataset="digits", hidden=16, steps=6, eval_every=3)


@pytest.mark.parametrize("mode", ["sync", "allreduce"])
def test_runs_ratio_one_and_byte_counts(mode: str) -> None:
    """Ratio 1.0 reproduces the uncompressed run; compressed runs count exactly the
    bytes of the cost formula (and of a hand count)."""
    plain = ddlkit.run(BASE.replace(mode=mode))
    full = ddlkit.run(BASE.replace(mode=mode, compression="topk", compress_ratio=1.0))
    assert plain.status == full.status == "ok", (plain.error, full.error)
    np.testing.assert_allclose(full.final_params, plain.final_params, atol=1e-6, rtol=0)
    assert abs(full.final["test_loss"] - plain.final["test_loss"]) < 1e-6

    m = cost.n_params(BASE)  # 64·16 + 16 + 16·10 + 10 = 1210
    assert m == 1210
    hand = {"topk": 13 * (4 + 4), "qsgd": m * 1 + 4}  # k = ⌈0.01·1210⌉ = 13; int8 + norm
    for name, extra in (("topk", {"compress_ratio": 0.01}), ("qsgd", {"quant_bits": 8})):
        exp = BASE.replace(mode=mode, compression=name, **extra)
        result = ddlkit.run(exp)
        assert result.status == "ok", result.error
        assert cost.message_bytes(exp) == hand[name]
        for totals, formula in zip(result.ranks, cost.run_traffic(exp)):
            assert cost.Traffic.of(totals) == formula, (name, totals.rank)
        worker = result.ranks[1] if mode == "sync" else result.ranks[0]
        assert worker.payload_sent == BASE.steps * hand[name]  # N − 1 = 1 peer
        if mode == "sync":  # the pull stays uncompressed
            assert worker.payload_received == BASE.steps * m * 4


def test_all_reduce_compression_with_three_workers_agrees_with_sync() -> None:
    """All-gather with N = 3: (N−1)·message bytes, and the same model as the PS."""
    exp = BASE.replace(workers=3, compression="qsgd", quant_bits=4)
    ps, ar = ddlkit.run(exp), ddlkit.run(exp.replace(mode="allreduce"))
    assert ps.status == ar.status == "ok", (ps.error, ar.error)
    np.testing.assert_allclose(ar.final_params, ps.final_params, atol=1e-6, rtol=0)
    for totals, formula in zip(ar.ranks, cost.run_traffic(exp.replace(mode="allreduce"))):
        assert cost.Traffic.of(totals) == formula
    assert ar.ranks[0].payload_received == exp.steps * 2 * (1210 + 4)

    fig = plots.compression([ps, ar], labels=["PS", "all-reduce"])
    bars = {gid: [p.get_width() for p in fig.axes[1].patches if p.get_gid() == gid]
            for gid in ("pushed", "pulled")}
    assert bars["pushed"] == [ps.ranks[1].payload_sent, ar.ranks[0].payload_sent]
    assert bars["pulled"] == [ps.ranks[1].payload_received, ar.ranks[0].payload_received]
    assert bars["pulled"][0] == exp.steps * 1210 * 4  # the PS pull stays uncompressed
    assert len(fig.axes[0].get_lines()) == 2


# -- all-gather -----------------------------------------------------------------------------
@pytest.mark.parametrize("world", [2, 3])
def test_all_gather_equals_gloo(world: int) -> None:
    job = functools.partial(all_gather_vs_gloo, length=37, seed=world)
    for out in run_ranks(job, world):
        assert out["equal"] and out["own"]
        assert out["events"] == [((world - 1) * 37, (world - 1) * (37 // 2))]
