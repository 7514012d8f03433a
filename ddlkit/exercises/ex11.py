"""Checks for exercise 11, ``ps_step_time`` and ``ring_step_time`` (the α–β model).

First against :func:`ddlkit.analysis.step_time.predict_step_time` (ddlkit's own implementation,
headers and server compute set to zero), then against a short sync run on an emulated
slow network, whose measured time per step the learner's formula must predict from the
run's measured compute time. The PS formula must count incast: N pushes cross the
server's one link one after another (a learner who charges one push is told so).
"""
from __future__ import annotations

import math
import numbers
from typing import Any

from ddlkit.analysis.cost import NO_HEADER
from ddlkit.analysis.step_time import predict_step_time
from ddlkit.config import Experiment
from ddlkit.exercises.grading import CheckFailed, Exercise, Learner

EXERCISE = Exercise(11, "ex11_alpha_beta", "the α–β step-time model: formula and emulated run")

WORKER_COUNTS = (1, 2, 3, 4, 8, 64)
SIZES = (10, 1000, 307_210)
NETWORKS = ((0.0, 1e-8), (1e-3, 0.0), (5e-4, 8e-8))  # (α s, β s/byte)
T_COMPUTE = (0.0, 0.02)
#: the measured check: a sync run on an emulated 2 Mbit/s, 15 ms network
RUN: dict[str, Any] = dict(mode="sync", workers=2, dataset="digits", model="linear", steps=5,
                           eval_every=5, batch_size=16, net_latency_ms=15.0,
                           net_bandwidth_mbps=2.0, timeout_s=30.0)
LO, HI = 0.75, 1.5


def _call(learner: Learner, name: str, *args: Any) -> float:
    got = getattr(learner.module(), name)(*args)
    if not isinstance(got, numbers.Real) or isinstance(got, bool) or not math.isfinite(got):
        raise CheckFailed(f"{name}{args} returned {got!r}; expected a number of seconds")
    return float(got)


def _formula(learner: Learner, name: str, mode: str) -> None:
    for n in WORKER_COUNTS:
        for m in SIZES:
            for alpha, beta in NETWORKS:
                for t_c in T_COMPUTE:
                    args = (n, m, 4, alpha, beta, t_c)
                    want = predict_step_time(mode, m, n, alpha, beta, t_c,
                                             header=NO_HEADER).total_s
                    got = _call(learner, name, *args)
                    if not math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12):
                        raise CheckFailed(
                            f"{name}(workers={n}, n_params={m}, itemsize=4, alpha_s={alpha:g}, "
                            f"beta_s_per_byte={beta:g}, t_compute_s={t_c:g}) = {got:.6g} s; "
                            f"expected {want:.6g} s")


@EXERCISE.check("PS formula: compute + N pushes in + N pulls out through the server's "
                "one link (incast), against ddlkit's cost model")
def ps_formula(learner: Learner) -> None:
    try:
        _formula(learner, "ps_step_time", "sync")
    except CheckFailed as failed:
        n, m, alpha, beta, t_c = 4, 1000, 5e-4, 8e-8, 0.02
        one_push = t_c + (n + 1) * (alpha + m * 4 * beta)
        if math.isclose(_call(learner, "ps_step_time", n, m, 4, alpha, beta, t_c), one_push,
                        rel_tol=1e-9):
            raise CheckFailed(f"{failed}. You charge the server's link with one push: the N "
                              "pushes arrive together and cross its one link one after "
                              "another (incast), N·(α + M·itemsize·β).") from None
        raise


@EXERCISE.check("ring formula: compute + 2(N−1)·(α + M/N·itemsize·β), against ddlkit's model")
def ring_formula(learner: Learner) -> None:
    _formula(learner, "ring_step_time", "allreduce")


@EXERCISE.check("PS prediction within [0.75, 1.5]× of a real run on an emulated "
                "2 Mbit/s, 15 ms network")
def ps_measured(learner: Learner) -> None:
    import ddlkit
    from ddlkit.analysis.cost import n_params
    from ddlkit.analysis.step_time import measured_compute, measured_step_s
    from ddlkit.comm.network import Network

    exp = Experiment(**RUN)
    result = learner.memo("run", lambda: ddlkit.run(exp))
    net = Network.of(exp)
    if net is None:
        raise RuntimeError(f"{exp.label()}: the measured check needs an emulated network")
    compute = measured_compute(result)
    t_c = compute.worker_s + compute.server_s
    m = n_params(exp)
    got = _call(learner, "ps_step_time", exp.workers, m, 4, net.latency_s,
                net.beta_s_per_byte, t_c)
    measured = measured_step_s(result)
    if not LO <= measured / got <= HI:
        raise CheckFailed(f"{exp.label()}: measured {measured * 1e3:.1f} ms per step; you "
                          f"predict {got * 1e3:.1f} ms (M = {m}, compute {t_c * 1e3:.2f} ms)")
