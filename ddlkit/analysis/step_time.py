"""Step time in the latency–bandwidth (α–β) model: predicted, measured, compared.

Sending n bytes costs α + n·β (α the latency per message, β = 1/B the time per byte;
Hockney 1994; Thakur, Rabenseifner & Gropp 2005). With M parameters of s bytes, N
workers and a **measured** compute time per step, one synchronous step takes:

- parameter server (``sync``): t_c + N·(α + M·s·β) + t_server + N·(α + M·s·β). The
  server has one link. The N workers push at once; their N gradients converge on that
  link and cross it one after another (incast; Phanishayee et al. 2008, FAST), and only
  then can the server update. Then it sends the model to the N workers over the same
  link, N messages more, which share it and arrive together. The link is full duplex (in
  and out could overlap), but in a synchronous step they do not: the server sends
  nothing before it has every push, and no worker pushes before it has the model. Both
  terms grow with N: the server bottleneck of a parameter server (Li et al. 2014, OSDI);
- ring all-reduce (``allreduce``): t_c + 2(N−1)·α + 2(N−1)/N·M·s·β: the bandwidth term
  stays flat as N grows, the latency term grows (Patarasuk & Yuan 2009);
- local SGD (``local-sgd``, McMahan et al. 2017): a ring all-reduce of the model once
  every H = ``local_steps`` steps, so t_c + (ring cost)/H per step on average.

This is the model :class:`~ddlkit.comm.network.Network` emulates: each rank's link is
its own and full duplex, and each direction carries one message at a time. Headers (a
few values per message, each mode's ``header`` in :data:`ddlkit.modes.MODES`) are
counted. Everything
here returned by a ``predict_*`` function is a **prediction**, and says so in its
``label``.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, replace
from typing import Sequence

from ddlkit.analysis import cost
from ddlkit.comm.network import Network
from ddlkit.config import Experiment
from ddlkit.modes import MODES, CommPattern
from ddlkit.runtime.pool import WorkerPool
from ddlkit.runtime.result import RunResult
from ddlkit.units import format_bytes

#: modes with a fixed per-step pattern the α–β model predicts (from the registry)
PREDICTED_MODES: tuple[str, ...] = tuple(
    name for name, mode in MODES.items() if mode.pattern.fixed_per_step)


@dataclass(frozen=True)
class StepTime:
    """A predicted step: seconds of compute and of communication, and bytes moved per step
    by one worker and by the busiest rank (the server, for a parameter server)."""

    mode: str
    workers: int
    n_params: int
    compute_s: float
    comm_s: float
    worker_bytes: float
    busiest_bytes: float
    network: str

    @property
    def total_s(self) -> float:
        """Predicted seconds per step: compute plus communication."""
        return self.compute_s + self.comm_s

    @property
    def label(self) -> str:
        return (f"predicted (α–β model): {self.mode}, {self.workers} workers, "
                f"{self.n_params:,} params, {self.network}")


def predict_step_time(mode: str, n_params: int, workers: int, alpha_s: float,
                      beta_s_per_byte: float, t_compute_s: float, *, itemsize: int = 4,
                      header: cost.Header | None = None, local_steps: int = 1,
                      t_server_s: float = 0.0, algorithm: str = "ring") -> StepTime:
    """Predicted seconds per step of ``mode`` (see the module docstring for the formulas).

    ``t_compute_s`` is a worker's measured compute per step (:func:`measured_compute`),
    ``t_server_s`` the server's (parameter server only). ``header`` defaults to ddlkit's
    header for the mode. ``algorithm`` is the all-reduce's (``Experiment.allreduce_impl``):
    the ring, or recursive doubling, ⌈log₂N⌉ rounds of the whole buffer (plus two for
    the fold when N is not a power of two); gloo's is predicted as a ring.
    """
    if mode not in PREDICTED_MODES:
        others = " and ".join(m for m in MODES if m not in PREDICTED_MODES)
        raise ValueError(f"mode: {mode!r} is not allowed; one of {', '.join(PREDICTED_MODES)} "
                         f"({others} have no fixed per-step pattern)")
    cost._check(workers, n_params, itemsize)
    for name, value in (("alpha_s", alpha_s), ("beta_s_per_byte", beta_s_per_byte),
                        ("t_compute_s", t_compute_s), ("t_server_s", t_server_s)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                0 <= value < math.inf):
            raise ValueError(f"{name}: {value!r} is not allowed; seconds ≥ 0")
    if isinstance(local_steps, bool) or not isinstance(local_steps, int) or local_steps < 1:
        raise ValueError(f"local_steps: {local_steps!r} is not allowed; a whole number ≥ 1")
    pattern = MODES[mode].pattern
    h = MODES[mode].header if header is None else header
    n, s = workers, itemsize
    net = f"α = {alpha_s * 1e3:g} ms, β = {beta_s_per_byte * 1e9:g} ns/byte"
    if pattern is CommPattern.PS_EVERY_STEP:
        push, pull = (n_params + h.push) * s, (n_params + h.pull) * s
        comm = n * (alpha_s + push * beta_s_per_byte) + n * (alpha_s + pull * beta_s_per_byte)
        return StepTime(mode, n, n_params, t_compute_s + t_server_s, comm, push + pull,
                        n * (push + pull), net)
    length = (n_params + h.push) * s
    moved: float  # bytes through the busiest rank per step
    if algorithm == "doubling" and n > 1:
        p = 1 << (n.bit_length() - 1)
        rounds = (p.bit_length() - 1) + (2 if p != n else 0)
        ring = rounds * (alpha_s + length * beta_s_per_byte)
        moved = 2 * ((p.bit_length() - 1) + (1 if p != n else 0)) * length  # busiest rank
    else:
        ring = 2 * (n - 1) * alpha_s + 2 * (n - 1) / n * length * beta_s_per_byte
        moved = 2 * 2 * (n - 1) / n * length  # sent plus received
    every = local_steps if pattern is CommPattern.ALLREDUCE_EVERY_H else 1
    return StepTime(mode, n, n_params, t_compute_s, ring / every, moved / every,
                    moved / every, net)


# -- measured ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ComputeTime:
    """Measured compute seconds per step: a worker's (mean over workers) and the server's."""

    worker_s: float
    server_s: float = 0.0


def measured_compute(result: RunResult) -> ComputeTime:
    """Compute per step from a run's ``compute`` spans (evaluation excluded): each rank's
    total compute time / steps, averaged over the workers; the server's apart."""
    steps = result.config.steps
    workers = [r.compute_s / steps for r in result.ranks if r.role == "worker"]
    server = [r.compute_s / steps for r in result.ranks if r.role == "server"]
    if not workers:
        raise ValueError("result: no worker totals recorded; was the run complete?")
    return ComputeTime(sum(workers) / len(workers), server[0] if server else 0.0)


def measured_step_s(result: RunResult) -> float:
    """Measured seconds per step, from the end of step 1 to the end of the last step
    (start-up skew excluded), minus evaluation spans in that window, / (steps − 1)."""
    steps = result.config.steps
    if steps < 2:
        raise ValueError(f"steps: {steps} is too few to measure a step time; at least 2")

    def end_of(step: int) -> float:
        ends = [e.t_end for e in result.events if e.step == step and e.op != "eval"]
        if not ends:
            raise ValueError(f"result: no events recorded for step {step}")
        return max(ends)

    t0, t1 = end_of(1), end_of(steps)
    evals = sum(max(0.0, min(e.t_end, t1) - max(e.t_post, t0))
                for e in result.events if e.op == "eval")
    return (t1 - t0 - evals) / (steps - 1)


def predict_for(exp: Experiment, compute: ComputeTime,
                network: Network | None = None) -> StepTime:
    """The prediction for ``exp`` with measured ``compute``, on ``network`` (default: the
    experiment's own emulated network; none means free communication)."""
    net = Network.of(exp) if network is None else network
    return _predict(exp.mode, exp.workers, cost.n_params(exp), cost.itemsize(exp),
                    exp.local_steps, compute, Network() if net is None else net,
                    exp.allreduce_impl)


def _predict(mode: str, workers: int, n_params: int, itemsize: int, local_steps: int,
             compute: ComputeTime, net: Network, algorithm: str = "ring") -> StepTime:
    step = predict_step_time(mode, n_params, workers, net.latency_s, net.beta_s_per_byte,
                             compute.worker_s, itemsize=itemsize, local_steps=local_steps,
                             t_server_s=compute.server_s, algorithm=algorithm)
    return replace(step, network=net.name)


@dataclass(frozen=True)
class Comparison:
    """A run's measured step time against the α–β prediction made from its own compute."""

    exp: Experiment
    measured_s: float
    predicted: StepTime
    compute: ComputeTime

    @property
    def ratio(self) -> float:
        """Measured / predicted: 1.0 is a perfect prediction."""
        return self.measured_s / self.predicted.total_s

    @property
    def error(self) -> float:
        """|measured − predicted| / measured."""
        return abs(self.measured_s - self.predicted.total_s) / self.measured_s


def compare(result: RunResult) -> Comparison:
    """Measured step time of a finished run against its α–β prediction."""
    if result.status != "ok":
        raise ValueError(f"result: status {result.status!r}; compare a complete run "
                         f"({result.error})")
    compute = measured_compute(result)
    return Comparison(result.config, measured_step_s(result),
                      predict_for(result.config, compute), compute)


def comparison_text(comparisons: Sequence[Comparison]) -> str:
    """One line per run: measured and predicted seconds per step, and their ratio."""
    lines = [f"{'mode':<10} {'N':>3} {'measured ms':>12} {'predicted ms':>13} "
             f"{'measured/predicted':>19}"]
    lines += [f"{c.exp.mode:<10} {c.exp.workers:>3} {c.measured_s * 1e3:>12.1f} "
              f"{c.predicted.total_s * 1e3:>13.1f} {c.ratio:>19.2f}" for c in comparisons]
    return "\n".join(lines)


def step_ratio(comparisons: Sequence[Comparison], slower: str = "sync",
               faster: str = "allreduce") -> dict[int, float]:
    """Measured step time of mode ``slower`` over mode ``faster``, per worker count."""
    by = {(c.exp.mode, c.exp.workers): c.measured_s for c in comparisons}
    return {n: by[(slower, n)] / by[(faster, n)]
            for (mode, n) in by if mode == slower and (faster, n) in by}


def measure_and_compare(base: Experiment, modes: Sequence[str], workers: Sequence[int],
                        pool: WorkerPool | None = None) -> list[Comparison]:
    """Run ``base`` in every mode with every worker count and compare each run with its
    prediction. The runs share one warm :class:`~ddlkit.runtime.pool.WorkerPool` (``pool``, or
    one made for the sweep and closed after it), so processes start only once."""
    from ddlkit.runtime import run

    if pool is None:
        size = max(base.replace(mode=m, workers=n).world_size for m in modes for n in workers)
        with WorkerPool(size) as own:
            return measure_and_compare(base, modes, workers, own)
    return [compare(run(base.replace(mode=mode, workers=n), pool=pool))
            for mode in modes for n in workers]


# -- what-if tables ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PredictionTable:
    """Predicted step times (labelled as predictions) for several modes, N and networks."""

    rows: tuple[StepTime, ...]
    compute: ComputeTime

    def __str__(self) -> str:

        head = (f"PREDICTION (α–β model), compute {self.compute.worker_s * 1e3:.3g} ms/step "
                f"per worker (measured)\n{'mode':<10} {'N':>4} {'network':<28} "
                f"{'compute ms':>10} {'comm ms':>10} {'step ms':>10} {'busiest/step':>12}")
        lines = [head] + [
            f"{r.mode:<10} {r.workers:>4} {r.network:<34} {r.compute_s * 1e3:>10.2f} "
            f"{r.comm_s * 1e3:>10.2f} {r.total_s * 1e3:>10.2f} "
            f"{format_bytes(r.busiest_bytes):>12}" for r in self.rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"

    def best(self, workers: int, network: str) -> StepTime:
        """The fastest predicted mode for ``workers`` on ``network`` (a label)."""
        rows = [r for r in self.rows if r.workers == workers and r.network == network]
        if not rows:
            raise ValueError(f"workers: no row for {workers} workers on {network!r}")
        return min(rows, key=lambda r: r.total_s)


def prediction_table(exp: Experiment, compute: ComputeTime, workers: Sequence[int],
                     networks: Sequence[Network],
                     modes: Sequence[str] = ("sync", "allreduce")) -> PredictionTable:
    """What if: ``exp``'s model with the measured ``compute`` per step, predicted for every
    network, mode and worker count, e.g. 64 workers at 10 Gbit/s (beyond what one laptop
    can run). Compute per step is assumed not to change with N (each worker keeps its
    batch size), nor the server's."""
    m, s = cost.n_params(exp), cost.itemsize(exp)
    return PredictionTable(tuple(_predict(mode, n, m, s, exp.local_steps, compute, net)
                                 for net in networks for mode in modes for n in workers),
                           compute)
