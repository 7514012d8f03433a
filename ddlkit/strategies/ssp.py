"""Stale Synchronous Parallel (SSP) parameter server (Ho et al. 2013, "More effective
distributed ML via a stale synchronous parallel parameter server", NIPS, §2).

Rank 0 is the server, ranks 1..N are workers. Worker i's **clock** c_i is the number of
gradients it has pushed. The server answers a push with the current model (a pull) only
when the worker may start its next step, the **SSP condition**

    c_i − min_j c_j ≤ s        (s = ``staleness_bound``; the minimum runs over live workers)

and otherwise holds the reply back until the slowest worker catches up. s = 0 is a
synchronous server; the larger s, the further fast workers run ahead of a straggler; any
s ≥ ``steps`` is read as s = ∞: the gate never closes, as in ``async``.

How the server updates the model, and why s = 0 is exactly ``sync``:

- Gradients that arrive are kept until the next reply leaves the server. Just before any
  reply, everything that arrived since the last one is folded into a single update,
  ``Σ n_i g_i / B``: each gradient weighted by its share of the global batch
  B = ``batch_size × workers`` (= Σ_j n_j over one clock of all workers), then one step
  of the optimiser. A worker's reply therefore always contains its own gradient
  (read-my-writes, as in Ho et al.'s SSPTable), and no worker can see the difference
  between "applied on arrival" and "applied before the next reply".
- With s = 0 no reply for clock c leaves before every worker has delivered clock c, so
  each update is the sample-weighted mean of one whole clock, computed on the same
  parameters: exactly sync's step, for every optimiser (the tests check it to 1e-6).
- With s = ∞ every reply leaves at once, so each update is one gradient scaled by its
  share n_i/B: async's schedule with the learning rate scaled as in notebook 05
  (ddlkit's ``async`` applies each gradient at the full ``lr``). For plain SGD the
  updates of one clock add up to one sync step whatever the schedule; momentum and Adam
  take one optimiser step per update, so between the two ends they take more, smaller
  steps than sync.

Like ``async``, the run spends a budget of ``steps × workers`` gradients (``steps``
counts rounds of N); when it is spent every held reply, and the reply to every later
gradient (which is not applied), says stop. The staleness of each applied gradient
(updates applied between its worker's pull and its application) is recorded; a gradient
pulled at clock c waits at most for the other workers' clocks c−s+1 … c+s+1, so it is at
most (N−1)(2s+1) updates stale. Evaluation rows also carry the clocks, the largest gap
c_i − min_j c_j at which a reply was sent (``clock_gap_max``, never above s) and how many
replies the gate held back (``gated``). A lost worker fails the run unless
``on_worker_loss="continue"``; then it leaves the minimum, and its share leaves B.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from ddlkit.modes import MODES
from ddlkit.strategies import gated_ps
from ddlkit.strategies.common import weighted_mean_into
from ddlkit.strategies.context import Context

HEADER = MODES["ssp"].header.push  # sample count, batch loss, version pulled
STOP = gated_ps.STOP


def released(clocks: Mapping[int, int], waiting: Iterable[int], bound: int | None) -> list[int]:
    """The waiting workers that may start their next step, in rank order.

    ``clocks`` holds the clock (gradients pushed) of every live worker; a waiting worker
    i may go on iff c_i − min_j c_j ≤ ``bound`` (Ho et al. 2013, §2); None means ∞.
    """
    if bound is None:
        return sorted(waiting)
    slowest = min(clocks.values())
    return sorted(r for r in waiting if clocks[r] - slowest <= bound)


def run(ctx: Context) -> dict[str, Any]:
    if ctx.role == "server":
        return _Server(ctx).serve()
    gated_ps.worker(ctx)
    return {}


class _Server(gated_ps.GatedServer):
    """The SSP server: replies wait for the clocks; what arrived meanwhile is one update."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.bound = ctx.exp.staleness_limit  # None: s = ∞
        self.global_batch = float(ctx.exp.batch_size * ctx.exp.workers)  # B
        self.batch_sizes: dict[int, float] = {}
        self.grad = torch.zeros_like(self.model.flat)

    def gate(self) -> list[int]:
        """The waiting workers within ``s`` clocks of the slowest (Ho et al. 2013, §2)."""
        return released(self.clocks, self.waiting, self.bound)

    def update(self, ranks: list[int]) -> None:
        """One update from all of them: Σ n_i g_i / B, then the optimiser."""
        counts = [self.headers[r].samples for r in ranks]
        with self.ctx.recorder.span("compute"):
            total = weighted_mean_into(self.grad, [self.gradient(r) for r in ranks], counts)
            if total != self.global_batch:  # a partial clock: its share of one sync step
                self.grad.mul_(total / self.global_batch)
            self.opt.step(self.grad, gradients=len(ranks))  # the LR schedule counts them

    def accept(self, sender: int) -> None:
        """Its batch size is its share of B, should the worker be lost."""
        super().accept(sender)
        self.batch_sizes[sender] = self.headers[sender].samples

    def lose(self, rank: int, reason: str) -> None:
        """A lost worker leaves the clock minimum, and its share leaves B."""
        super().lose(rank, reason)
        self.global_batch -= self.batch_sizes.get(rank, float(self.ctx.exp.batch_size))

    def report(self) -> dict[str, Any]:
        clocks = [self.clocks.get(r) for r in range(1, self.ctx.exp.workers + 1)]
        return {**super().report(), "clocks": clocks, "clock_gap_max": self.gap_max,
                "gated": self.gated}
