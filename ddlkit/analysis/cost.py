"""The cost formulas: bytes and messages per step for each rank of each strategy.

M is the number of model parameters, N the number of workers and s the itemsize (bytes
per element: 4 for float32). Per training step:

- parameter server (PS) server: receives N·M and sends N·M elements, 2N messages;
- PS worker: sends M (its gradient) and receives M (the new parameters), 2 messages;
- ring all-reduce worker: sends and receives about 2(N−1)/N·M elements in 2(N−1)
  messages, whatever N is. 2(N−1)/N·M per rank is the lower bound for any all-reduce,
  and the ring reaches it (Patarasuk & Yuan 2009, "Bandwidth optimal all-reduce
  algorithms for clusters of workstations", JPDC 69(2)).

Local SGD (McMahan et al. 2017) runs the same all-reduce on the model, but only after every
H local steps: ⌈steps/H⌉ averages per run, so about 1/H of all-reduce SGD's bytes.

The server's traffic grows with N; a ring worker's stays flat. The ring pays in messages
instead: 2(N−1) per step, so its latency term grows with N. In the latency–bandwidth
(α–β) model of Thakur, Rabenseifner & Gropp 2005 a ring all-reduce costs
2(N−1)·α + 2(N−1)/N·M·s·β; the PS server's one link carries its 2N messages, N pushes in
one after another (incast) and N pulls out: 2N·(α + M·s·β)
(:mod:`ddlkit.analysis.step_time`).

ddlkit's messages also carry a small header, counted in ``bytes_*`` but not in
``payload_*`` (each mode's ``header`` in the registry, :data:`ddlkit.modes.MODES`; here as
:data:`HEADERS`). The all-reduce strategy reduces its header inside the same buffer as
the gradient (M + 2 elements), so its whole buffer is payload.
Every function returns a :class:`Traffic` whose field names are those of
:class:`~ddlkit.comm.accounting.RankTotals`, so a formula compares directly with a run.

With gradient compression a worker's gradient message shrinks to P bytes: top-k sends
k = ⌈ratio·M⌉ values and int32 indices, P = k·(s + 4); b-bit QSGD sends M levels of
⌈b/8⌉ bytes (int8 or int16) and the norm, P = M·⌈b/8⌉ + s. On the PS only the push
shrinks (the server still sends the full model back). On all-reduce each worker
all-gathers the others' messages: (N−1)·(P + header) bytes in and out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Mapping

from ddlkit.comm.accounting import RankTotals
from ddlkit.comm.ring import chunk_sizes
from ddlkit.config import Experiment
from ddlkit.data import DATASETS
from ddlkit.modes import MODES, CommPattern, Header
from ddlkit.strategies import local_sgd

#: every mode's header sizes (elements), read from the registry (see :data:`MODES`)
HEADERS: Mapping[str, Header] = MappingProxyType({n: m.header for n, m in MODES.items()})

NO_HEADER = Header(0, 0)


@dataclass(frozen=True)
class Traffic:
    """Bytes (everything on the wire), payload bytes (model data) and messages of one rank.

    Supports ``+`` and ``* k`` (k steps), and compares with a run's totals through
    :meth:`of`.
    """

    bytes_sent: int = 0
    bytes_received: int = 0
    payload_sent: int = 0
    payload_received: int = 0
    messages_sent: int = 0
    messages_received: int = 0

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __mul__(self, k: int) -> Traffic:
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"k: {k!r} is not allowed; multiply by a whole number ≥ 0")
        return Traffic(*(getattr(self, f.name) * k for f in fields(self)))

    __rmul__ = __mul__

    @property
    def bytes(self) -> int:
        """Bytes sent plus received."""
        return self.bytes_sent + self.bytes_received

    @classmethod
    def of(cls, totals: RankTotals) -> Traffic:
        """The same six counts, read from a run's per-rank totals."""
        return cls(*(getattr(totals, f.name) for f in fields(cls)))


def n_params(exp: Experiment) -> int:
    """M for an experiment: d·k + k (linear) or d·h + h + h·k + k (MLP with h hidden units),
    where d is the number of features and k the number of outputs (classes, or 1 for
    regression). Other models are built and their parameters counted."""
    info = DATASETS[exp.dataset]
    d, k = info.n_features, max(info.n_classes, 1)
    if exp.model == "linear":
        return d * k + k
    if exp.model == "mlp":
        h = exp.hidden
        return d * h + h + h * k + k
    from ddlkit.train.models import build_model

    model = build_model(exp.model, info, exp.hidden, exp.seed)
    return sum(p.numel() for p in model.parameters())


def itemsize(exp: Experiment) -> int:
    """Bytes per element of the experiment's dtype."""
    return {"float32": 4, "float64": 8}[exp.dtype]


# -- parameter server ------------------------------------------------------------------
def ps_server_step(workers: int, n_params: int, itemsize: int = 4,
                   header: Header = NO_HEADER) -> Traffic:
    """One synchronous step at the PS server: N·M elements in and N·M out, N messages each."""
    _check(workers, n_params, itemsize)
    return Traffic(bytes_sent=workers * (n_params + header.pull) * itemsize,
                   bytes_received=workers * (n_params + header.push) * itemsize,
                   payload_sent=workers * n_params * itemsize,
                   payload_received=workers * n_params * itemsize,
                   messages_sent=workers, messages_received=workers)


def ps_worker_step(n_params: int, itemsize: int = 4, header: Header = NO_HEADER) -> Traffic:
    """One step at a PS worker: M elements out (gradient), M in (parameters), one message each."""
    _check(1, n_params, itemsize)
    return Traffic(bytes_sent=(n_params + header.push) * itemsize,
                   bytes_received=(n_params + header.pull) * itemsize,
                   payload_sent=n_params * itemsize, payload_received=n_params * itemsize,
                   messages_sent=1, messages_received=1)


def async_gradients(workers: int, steps: int) -> int:
    """Gradients an async server receives in a whole run: steps·N + N − 1.

    It applies a budget of steps·N. The worker whose gradient spends the budget is told to
    stop in the reply; every other worker learns it only by sending one more gradient,
    which is answered with "stop" and not applied. Which worker sends how many depends
    on timing; the total does not.
    """
    _check(workers, 1, 1)
    return steps * workers + workers - 1


# -- ring all-reduce -----------------------------------------------------------------------
def ring_ideal_elements(workers: int, n_params: int) -> float:
    """2(N−1)/N·M: elements each rank sends (and receives) per ring all-reduce, the
    bandwidth lower bound (Patarasuk & Yuan 2009)."""
    _check(workers, n_params, 1)
    return 2 * (workers - 1) / workers * n_params


def ring_worker_step(workers: int, n_params: int, rank: int, itemsize: int = 4,
                     header: Header = NO_HEADER) -> Traffic:
    """Exact traffic of ``rank`` in one ring all-reduce of M + header elements.

    The buffer is cut into N chunks that differ by at most one element
    (:func:`~ddlkit.comm.ring.chunk_sizes`). In reduce-scatter rank r sends every chunk
    except chunk r+1 and receives every chunk except its own; in all-gather it sends every
    chunk except r+2 and receives every chunk except r+1 (indices mod N). Empty chunks
    are not sent. With equal chunks this is exactly 2(N−1)/N of the buffer.
    """
    _check(workers, n_params, itemsize)
    if not 0 <= rank < workers:
        raise ValueError(f"rank: {rank!r} is not allowed; a whole number from 0 to {workers - 1}")
    if workers == 1:
        return Traffic()
    sizes = chunk_sizes(n_params + header.push, workers)
    n, r = workers, rank

    def all_but(skip: int) -> tuple[int, int]:
        kept = [k for i, k in enumerate(sizes) if i != skip % n]
        return sum(kept), sum(1 for k in kept if k)

    rs_sent, rs_sent_msgs = all_but(r + 1)
    rs_recv, rs_recv_msgs = all_but(r)
    ag_sent, ag_sent_msgs = all_but(r + 2)
    ag_recv, ag_recv_msgs = all_but(r + 1)
    sent, received = (rs_sent + ag_sent) * itemsize, (rs_recv + ag_recv) * itemsize
    return Traffic(bytes_sent=sent, bytes_received=received, payload_sent=sent,
                   payload_received=received, messages_sent=rs_sent_msgs + ag_sent_msgs,
                   messages_received=rs_recv_msgs + ag_recv_msgs)


def doubling_worker_step(workers: int, n_params: int, rank: int, itemsize: int = 4,
                         header: Header = NO_HEADER) -> Traffic:
    """Exact traffic of ``rank`` in one recursive-doubling all-reduce of M + header elements.

    With p the largest power of two ≤ N, each of the first p ranks swaps the whole buffer
    log₂p times; a rank r ≥ p sends its buffer to r − p and gets the sum back, so ranks
    r < N − p receive and send one buffer more (:mod:`ddlkit.comm.doubling`). As in the
    ring, the header is reduced inside the buffer, so all of it counts as payload.
    """
    _check(workers, n_params, itemsize)
    if not 0 <= rank < workers:
        raise ValueError(f"rank: {rank!r} is not allowed; a whole number from 0 to {workers - 1}")
    if workers == 1:
        return Traffic()
    from ddlkit.comm.doubling import largest_power_of_two

    b = (n_params + header.push) * itemsize
    p = largest_power_of_two(workers)
    msgs = 1 if rank >= p else (p.bit_length() - 1) + (1 if rank < workers - p else 0)
    return Traffic(msgs * b, msgs * b, msgs * b, msgs * b, msgs, msgs)  # all payload


def gloo_allreduce_step(workers: int, n_params: int, itemsize: int = 4,
                        header: Header = NO_HEADER) -> Traffic:
    """gloo's built-in all-reduce, as ddlkit records it: one collective per step, counted at
    the ring-optimal ⌊2(N−1)·bytes/N⌋ each way (gloo's own traffic is not observable)."""
    _check(workers, n_params, itemsize)
    n = (2 * (workers - 1) * (n_params + header.push) * itemsize) // workers
    return Traffic(n, n, n, n, 1, 1)


# -- compressed gradients ------------------------------------------------------------------
def topk_message_bytes(n_params: int, ratio: float, itemsize: int = 4) -> int:
    """k·(s + 4): k = ⌈ratio·M⌉ values of s bytes and k int32 indices (Lin et al. 2018)."""
    _check(1, n_params, itemsize)
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"ratio: {ratio!r} is not allowed; a fraction in (0, 1]")
    k = max(1, min(n_params, math.ceil(round(ratio * n_params, 9))))
    return k * (itemsize + 4)


def qsgd_message_bytes(n_params: int, bits: int, itemsize: int = 4) -> int:
    """M·⌈b/8⌉ + s: M levels in int8 (b ≤ 8) or int16, and the norm as one float
    (Alistarh et al. 2017, without their Elias coding)."""
    _check(1, n_params, itemsize)
    if not 2 <= bits <= 16:
        raise ValueError(f"bits: {bits!r} is not allowed; a whole number from 2 to 16")
    return n_params * math.ceil(bits / 8) + itemsize


def message_bytes(exp: Experiment) -> int:
    """P, the gradient payload of one worker message in ``exp`` (M·s uncompressed)."""
    m, s = n_params(exp), itemsize(exp)
    if exp.compression == "topk":
        return topk_message_bytes(m, exp.compress_ratio, s)
    if exp.compression == "qsgd":
        return qsgd_message_bytes(m, exp.quant_bits, s)
    return m * s


def compressed_ps_server_step(workers: int, n_params: int, message: int, itemsize: int = 4,
                              header: Header = NO_HEADER) -> Traffic:
    """A sync PS server step with compressed pushes: N messages of P bytes (+ header) in,
    N uncompressed models out."""
    plain = ps_server_step(workers, n_params, itemsize, header)
    return Traffic(plain.bytes_sent, workers * (message + header.push * itemsize),
                   plain.payload_sent, workers * message, workers, workers)


def compressed_ps_worker_step(n_params: int, message: int, itemsize: int = 4,
                              header: Header = NO_HEADER) -> Traffic:
    """A sync PS worker step: P bytes (+ header) pushed, the uncompressed model pulled."""
    plain = ps_worker_step(n_params, itemsize, header)
    return Traffic(message + header.push * itemsize, plain.bytes_received, message,
                   plain.payload_received, 1, 1)


def allgather_step(workers: int, message: int, itemsize: int = 4,
                   header: Header = NO_HEADER) -> Traffic:
    """One all-gather of every worker's message, as ddlkit records it: (N−1)·(P + header)
    bytes each way, one collective."""
    _check(workers, 1, itemsize)
    n = (workers - 1) * (message + header.push * itemsize)
    p = (workers - 1) * message
    return Traffic(n, n, p, p, 1, 1)


# -- a whole experiment ------------------------------------------------------------------
def step_traffic(exp: Experiment, rank: int) -> Traffic:
    """Per-step traffic of ``rank`` in ``exp``, headers included (modes that communicate
    the same way every step: sync and all-reduce).

    Async has no fixed per-step pattern (who sends next depends on timing): use
    :func:`async_traffic` with the number of gradients each worker sent. Local SGD
    communicates only every H steps: use :func:`average_traffic` and
    :func:`local_sgd_bytes_per_step`.
    """
    mode = MODES[exp.mode]
    m, s, header = n_params(exp), itemsize(exp), mode.header
    if exp.compression != "none":
        return _compressed_step(exp, rank, m, s, header)
    if mode.pattern is CommPattern.PS_EVERY_STEP:
        if rank == 0:
            return ps_server_step(exp.workers, m, s, header)
        return ps_worker_step(m, s, header)
    if mode.pattern is CommPattern.ALLREDUCE_EVERY_STEP:
        return _all_reduce(exp, rank, m, s, header)
    if mode.pattern is CommPattern.ALLREDUCE_EVERY_H:
        raise ValueError(f"mode: {exp.mode!r} communicates every local_steps steps, not every "
                         "step; use average_traffic() or local_sgd_bytes_per_step()")
    raise ValueError(f"mode: {exp.mode!r} has no fixed per-step traffic; use async_traffic()")


def _all_reduce(exp: Experiment, rank: int, m: int, s: int, header: Header) -> Traffic:
    if exp.allreduce_impl == "gloo":
        return gloo_allreduce_step(exp.workers, m, s, header)
    if exp.allreduce_impl == "doubling":
        return doubling_worker_step(exp.workers, m, rank, s, header)
    return ring_worker_step(exp.workers, m, rank, s, header)


# -- local SGD -----------------------------------------------------------------------------
def average_traffic(exp: Experiment, rank: int) -> Traffic:
    """Traffic of ``rank`` in one model average of local SGD: one all-reduce of the model
    plus its header (M + 2 elements), exactly what all-reduce SGD sends every step."""
    mode = MODES[exp.mode]
    if mode.pattern is not CommPattern.ALLREDUCE_EVERY_H:
        raise ValueError(f"mode: {exp.mode!r}; average_traffic() is for mode "
                         f"{_names(CommPattern.ALLREDUCE_EVERY_H)}")
    return _all_reduce(exp, rank, n_params(exp), itemsize(exp), mode.header)


def local_sgd_bytes_per_step(exp: Experiment, rank: int) -> float:
    """Mean bytes ``rank`` sends and receives per step in local SGD: one average's bytes
    times ⌈steps/H⌉ averages, over the steps. About 1/H of all-reduce SGD's per step
    (exactly 1/H when H divides ``steps``)."""
    rounds = local_sgd.average_rounds(exp.steps, exp.local_steps)
    return average_traffic(exp, rank).bytes * rounds / exp.steps


def _compressed_step(exp: Experiment, rank: int, m: int, s: int, header: Header) -> Traffic:
    message = message_bytes(exp)
    mode = MODES[exp.mode]
    if mode.compresses_gradients and mode.pattern is CommPattern.PS_EVERY_STEP:
        if rank == 0:
            return compressed_ps_server_step(exp.workers, m, message, s, header)
        return compressed_ps_worker_step(m, message, s, header)
    if mode.compresses_gradients and mode.pattern is CommPattern.ALLREDUCE_EVERY_STEP:
        return allgather_step(exp.workers, message, s, header)
    raise ValueError(f"mode: {exp.mode!r} does not compress gradients")


def async_traffic(exp: Experiment, gradients: list[int]) -> list[Traffic]:
    """Whole-run traffic of every rank of an async (or ssp) run in which worker w sent
    ``gradients[w]`` gradients: each one a message up and one reply down."""
    if MODES[exp.mode].pattern is not CommPattern.PS_PER_GRADIENT:
        raise ValueError(f"mode: {exp.mode!r}; async_traffic() is for modes "
                         f"{_names(CommPattern.PS_PER_GRADIENT)}")
    if len(gradients) != exp.workers:
        raise ValueError(f"gradients: {len(gradients)} counts given, one per worker needed "
                         f"({exp.workers})")
    m, s, header = n_params(exp), itemsize(exp), MODES[exp.mode].header
    one = ps_worker_step(m, s, header)
    workers = [one * g for g in gradients]
    server = Traffic(bytes_sent=sum(w.bytes_received for w in workers),
                     bytes_received=sum(w.bytes_sent for w in workers),
                     payload_sent=sum(w.payload_received for w in workers),
                     payload_received=sum(w.payload_sent for w in workers),
                     messages_sent=sum(gradients), messages_received=sum(gradients))
    return [server, *workers]


def run_traffic(exp: Experiment) -> list[Traffic]:
    """Whole-run traffic of every rank (rank order) for sync, all-reduce and local-SGD
    runs (local SGD: ⌈steps/H⌉ averages, see :func:`average_traffic`)."""
    if MODES[exp.mode].pattern is CommPattern.ALLREDUCE_EVERY_H:
        rounds = local_sgd.average_rounds(exp.steps, exp.local_steps)
        return [average_traffic(exp, r) * rounds for r in range(exp.world_size)]
    return [step_traffic(exp, r) * exp.steps for r in range(exp.world_size)]


def _names(pattern: CommPattern) -> str:
    """The modes that communicate by ``pattern``, quoted: ``'async' and 'ssp'``."""
    return " and ".join(repr(n) for n, m in MODES.items() if m.pattern is pattern)


def _check(workers: int, n_params: int, itemsize: int) -> None:
    for name, value in (("workers", workers), ("n_params", n_params), ("itemsize", itemsize)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: {value!r} is not allowed; a whole number ≥ 1")
