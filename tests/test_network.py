"""Network emulation and the α–β step-time model.

Emulated delays are checked as ratios between two runs in the same test (the extra time
of an emulated run over the same run without emulation, against the extra time the
model predicts), never as absolute times; bytes and results must not change at all.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import ddlkit
import ddlkit.analysis.cost
from ddlkit import ConfigError, Experiment
from ddlkit.analysis.cost import NO_HEADER, Header
from ddlkit.analysis.step_time import (
    ComputeTime,
    compare,
    measured_step_s,
    predict_step_time,
    prediction_table,
)
from ddlkit.comm.network import InboundLink, Network

#: ratio bounds for measured extra time / predicted extra time (wide: a loaded machine)
LO, HI = 0.8, 1.5
BASE = dict(dataset="digits", model="linear", steps=6, eval_every=6, batch_size=16,
            timeout_s=60.0)


# -- the Network ---------------------------------------------------------------------------------
def test_network_delay_label_and_collective_costs() -> None:
    net = Network.from_fields(0.5, 100)
    assert net is not None
    assert net.latency_s == 0.0005 and net.bandwidth_bytes_per_s == 12.5e6
    assert net.delay(1_250_000) == pytest.approx(0.0005 + 0.1)
    assert net.label == "emulated net 100 Mbit/s, 0.5 ms" and net.name == "100 Mbit/s, 0.5 ms"
    assert net.ring_all_reduce(8000, 4) == pytest.approx(6 * 0.0005 + 1.5 * 8000 / 12.5e6)
    assert net.ring_all_reduce(8000, 1) == 0.0
    assert net.broadcast(1000, 8) == pytest.approx(3 * net.delay(1000))
    assert Network.from_fields(0, 0) is None
    unlimited = Network.from_fields(2.0, 0)
    assert unlimited is not None and unlimited.beta_s_per_byte == 0.0
    assert unlimited.delay(10**9) == pytest.approx(0.002)
    assert Network.of(Experiment(net_bandwidth_mbps=10_000)).label == (
        "emulated net 10 Gbit/s, 0 ms")


@pytest.mark.parametrize("kwargs, field", [
    (dict(latency_s=-1.0), "latency_s"), (dict(latency_s=math.nan), "latency_s"),
    (dict(bandwidth_bytes_per_s=0.0), "bandwidth_bytes_per_s"),
    (dict(bandwidth_bytes_per_s=-3.0), "bandwidth_bytes_per_s")])
def test_network_rejects_bad_values(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Network(**kwargs)


@pytest.mark.parametrize("field, value", [
    ("net_latency_ms", -1.0), ("net_latency_ms", math.nan), ("net_latency_ms", 20_000.0),
    ("net_bandwidth_mbps", -10.0), ("net_bandwidth_mbps", math.inf), ("net_latency_ms", "1")])
def test_config_rejects_bad_network_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        Experiment(**{field: value})


# -- the predictor, against hand-computed values ------------------------------------------------
def test_predict_parameter_server_by_hand() -> None:
    # M = 1000 float32 (4000 B), N = 4, α = 1 ms, β = 10 ns/B: one message 1.04 ms;
    # 4 pushes in turn through the server's link (incast) + 4 pulls out = 8.32 ms;
    # + 10 ms compute + 2 ms server.
    p = predict_step_time("sync", 1000, 4, 1e-3, 1e-8, 0.010, header=NO_HEADER,
                          t_server_s=0.002)
    assert p.comm_s == pytest.approx(8.32e-3)
    assert p.compute_s == pytest.approx(0.012) and p.total_s == pytest.approx(0.02032)
    assert p.worker_bytes == 8000 and p.busiest_bytes == 32000
    assert "predicted" in p.label


def test_predict_ring_and_local_sgd_by_hand() -> None:
    # ring, N = 4: 2·3 = 6 messages of α, 2·3/4·4000 B = 6000 B: 6 ms + 60 µs.
    p = predict_step_time("allreduce", 1000, 4, 1e-3, 1e-8, 0.010, header=NO_HEADER)
    assert p.comm_s == pytest.approx(6.06e-3) and p.total_s == pytest.approx(0.01606)
    assert p.worker_bytes == pytest.approx(12000) and p.busiest_bytes == pytest.approx(12000)
    local = predict_step_time("local-sgd", 1000, 4, 1e-3, 1e-8, 0.010, header=NO_HEADER,
                              local_steps=4)
    assert local.comm_s == pytest.approx(6.06e-3 / 4) and local.worker_bytes == 3000
    # headers ride along: 2 extra values on the PS push
    h = predict_step_time("sync", 1000, 1, 0.0, 1e-8, 0.0, header=Header(push=2, pull=0))
    assert h.comm_s == pytest.approx((4008 + 4000) * 1e-8)


def test_ps_over_ring_grows_with_n_when_bandwidth_dominates() -> None:
    """2N·Mβ at the server over 2(N−1)/N·Mβ on the ring: N²/(N−1), 4 at N=2, 9.1 at N=8."""
    def ratio(n: int) -> float:
        ps = predict_step_time("sync", 10**6, n, 0.0, 1e-8, 0.0, header=NO_HEADER)
        ring = predict_step_time("allreduce", 10**6, n, 0.0, 1e-8, 0.0, header=NO_HEADER)
        return ps.comm_s / ring.comm_s

    assert [ratio(n) for n in (2, 4, 8)] == pytest.approx([4.0, 16 / 3, 64 / 7])


def test_inbound_link_lets_messages_cross_one_after_another() -> None:
    link = InboundLink()
    # three messages of 1 s arriving together cross at 1, 2 and 3 s (incast)
    assert [link.cross(1.0, 1.0) for _ in range(3)] == [1.0, 2.0, 3.0]
    # one arriving after the link is free crosses on arrival, as a ring's neighbour's does
    assert link.cross(10.0, 1.0) == 10.0 and link.cross(11.0, 1.0) == 11.0
    assert link.cross(11.5, 1.0) == 12.0  # half a message behind the one before


def test_predictor_rejects_modes_and_values_it_cannot_predict() -> None:
    with pytest.raises(ValueError, match="mode"):
        predict_step_time("async", 10, 2, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="alpha_s"):
        predict_step_time("sync", 10, 2, -1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="local_steps"):
        predict_step_time("local-sgd", 10, 2, 0.0, 0.0, 0.0, local_steps=0)


def test_what_if_table_for_64_workers() -> None:
    exp = Experiment(dataset="digits", model="mlp", hidden=2048)
    table = prediction_table(exp, ComputeTime(0.002, 0.001), [2, 64],
                             [Network.from_fields(0.05, 10_000)])
    assert len(table.rows) == 4 and "PREDICTION" in str(table)
    best = table.best(64, "10 Gbit/s, 0.05 ms")
    assert best.mode == "allreduce"
    ps = next(r for r in table.rows if r.mode == "sync" and r.workers == 64)
    m = ddlkit.analysis.cost.n_params(exp)
    h = ddlkit.analysis.cost.HEADERS["sync"]
    assert ps.busiest_bytes == 64 * ((m + h.push) * 4 + (m + h.pull) * 4)  # 64 in, 64 out


# -- emulation in real runs ----------------------------------------------------------------------
def _pair(**changes: object) -> tuple[ddlkit.RunResult, ddlkit.RunResult, Experiment]:
    plain = Experiment(**{**BASE, **changes})
    slow = plain.replace(net_latency_ms=15.0, net_bandwidth_mbps=2.0)
    return ddlkit.run(plain), ddlkit.run(slow), slow


@pytest.mark.slow
@pytest.mark.parametrize("changes", [dict(mode="sync", workers=2),
                                     dict(mode="allreduce", workers=3),
                                     dict(mode="allreduce", workers=2, allreduce_impl="gloo")],
                         ids=["sync", "ring", "gloo"])
def test_emulated_delay_adds_the_predicted_time_and_nothing_else(changes: dict) -> None:
    # The extra time per step, against the α–β prediction of the communication alone. One
    # pair of runs on a busy machine can be off (a plain run held up by another program
    # shrinks the difference), so the ratio is the median over three pairs, run back to back.
    pairs = []
    for _ in range(3):
        plain, slow, exp = _pair(**changes)
        assert plain.status == slow.status == "ok"
        net = Network.of(exp)
        predicted = predict_step_time(exp.mode, ddlkit.analysis.cost.n_params(exp),
                                      exp.workers, net.latency_s, net.beta_s_per_byte,
                                      0.0).comm_s
        ratio = (measured_step_s(slow) - measured_step_s(plain)) / predicted
        pairs.append((ratio, plain, slow))
    pairs.sort(key=lambda pair: pair[0])
    ratio, plain, slow = pairs[1]  # the median pair; the checks below read it
    assert LO <= ratio <= HI, [round(r, 2) for r, _, _ in pairs]
    # nothing else changes: bytes, messages, the trained model
    traffic = [(r.bytes_sent, r.bytes_received, r.payload_sent, r.messages_sent)
               for r in plain.ranks]
    assert [(r.bytes_sent, r.bytes_received, r.payload_sent, r.messages_sent)
            for r in slow.ranks] == traffic
    np.testing.assert_array_equal(plain.final_params, slow.final_params)
    # the emulated time is communication, not compute, on every rank
    for p, s in zip(plain.ranks, slow.ranks):
        assert s.comm_s + s.wait_s - p.comm_s - p.wait_s >= LO * predicted * (exp.steps - 1)
        assert s.compute_s < p.compute_s + 0.5 * predicted * exp.steps
    assert "emulated net 2 Mbit/s, 15 ms" in slow.config.label()
    # and the whole step, compute included, is predicted from the run's own compute time
    assert LO <= compare(slow).ratio <= HI


@pytest.mark.slow
def test_sender_pays_each_message_so_a_server_sends_in_turn() -> None:
    """The PS server sends the model to N workers over its one link: N sleeps, each its
    own ``net`` event, back to back; each worker's push costs one message."""
    plain, slow, exp = _pair(mode="sync", workers=3, steps=3, eval_every=3)
    net_events = [e for e in slow.events if e.op == "net"]
    assert not [e for e in plain.events if e.op == "net"]
    server = [e for e in net_events if e.rank == 0]
    assert len(server) == exp.workers * exp.steps
    assert {e.peer for e in server} == {1, 2, 3}
    one = Network.of(exp).delay(ddlkit.analysis.cost.n_params(exp) * 4)
    for e in server:
        assert LO <= (e.t_end - e.t_post) / one <= HI
    step2 = sorted((e for e in server if e.step == 2), key=lambda e: e.t_post)
    for a, b in zip(step2, step2[1:]):
        assert b.t_post >= a.t_end  # serial
    # a worker's push costs one message, whatever the other workers send
    workers = [e for e in net_events if e.rank > 0]
    assert len(workers) == exp.workers * exp.steps
    for e in workers:
        assert LO <= (e.t_end - e.t_post) / one <= HI


@pytest.mark.slow
def test_pushes_arriving_together_cross_the_servers_link_in_turn() -> None:
    """Incast: N workers push at once; the server has the last push N·(α + M/B) after the
    pushes began, one push's time apart from the one before (not all after one push)."""
    _, slow, exp = _pair(mode="sync", workers=3, steps=4, eval_every=4)
    push = ddlkit.analysis.cost.n_params(exp) + ddlkit.analysis.cost.HEADERS["sync"].push
    one = Network.of(exp).delay(push * 4)
    for step in range(2, exp.steps + 1):
        pushes = [e for e in slow.events if e.op == "send" and e.rank > 0 and e.step == step]
        taken = sorted(e.t_end for e in slow.events
                       if e.op == "recv" and e.rank == 0 and e.step == step)
        assert len(pushes) == len(taken) == exp.workers
        began = min(e.t_post for e in pushes)
        assert LO <= (taken[-1] - began) / (exp.workers * one) <= HI, (step, taken, began)
        for a, b in zip(taken, taken[1:]):
            assert b - a >= LO * one  # one after another


def test_doubling_prediction_has_fewer_rounds_than_the_ring() -> None:
    """Recursive doubling: ⌈log₂N⌉ rounds of the whole buffer (+2 to fold a non-power)."""
    from ddlkit.analysis.step_time import predict_step_time

    alpha, m = 1e-3, 1000
    for n, rounds in ((2, 1), (4, 2), (8, 3), (5, 4)):
        d = predict_step_time("allreduce", m, n, alpha, 0.0, 0.0,
                              header=ddlkit.analysis.cost.NO_HEADER, algorithm="doubling")
        r = predict_step_time("allreduce", m, n, alpha, 0.0, 0.0,
                              header=ddlkit.analysis.cost.NO_HEADER)
        assert d.comm_s == pytest.approx(rounds * alpha)
        assert r.comm_s == pytest.approx(2 * (n - 1) * alpha)
