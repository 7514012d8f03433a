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

from ddlkit.comm.inbox import Inbox, SenderLost
from ddlkit.config import Experiment
from ddlkit.strategies import async_ps
from ddlkit.strategies.common import (
    evaluate,
    final_state,
    maybe_checkpoint,
    resume_point,
    should_eval,
    weighted_mean_into,
)
from ddlkit.strategies.context import Context

HEADER = async_ps.HEADER  # the messages are async's: sample count, loss, version pulled
STOP = async_ps.STOP


def bound_of(exp: Experiment) -> int | None:
    """The staleness bound s of ``exp``, or None for ∞ (any s ≥ ``steps``)."""
    return exp.staleness_limit


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
    async_ps.worker(ctx)
    return {}


class _Server:
    """The SSP server's state: model, clocks, held replies and gradients not yet applied."""

    def __init__(self, ctx: Context) -> None:
        from ddlkit.train.trainer import Trainer

        self.ctx, exp = ctx, ctx.exp
        self.trainer = Trainer(exp, worker_index=-1, extra=1)  # reply = parameters + version
        self.model = self.trainer.model
        self.m = self.trainer.numel
        self.payload = self.m * self.model.flat.element_size()
        self.active = list(range(1, exp.workers + 1))
        self.buffers = {r: torch.empty(self.m + HEADER, dtype=self.model.flat.dtype)
                        for r in self.active}
        self.inbox = Inbox(ctx.comm, self.active, self.buffers, payload_bytes=self.payload)
        self.opt = self.trainer.optimizer()
        self.bound = bound_of(exp)
        self.budget = exp.steps * exp.workers
        self.rnd, self.samples = resume_point(ctx, self.trainer, self.opt)
        self.version = self.rnd * exp.workers
        self.clocks = {r: self.rnd for r in self.active}
        self.waiting: set[int] = set()  # delivered a gradient, reply held back
        self.pending: list[int] = []  # gradients received but not yet applied
        self.stopped: set[int] = set()  # told to stop
        self.global_batch = float(exp.batch_size * exp.workers)
        self.batch_sizes: dict[int, float] = {}
        self.grad = torch.zeros_like(self.model.flat)
        self.staleness: list[int] = []
        self.gap_max, self.gated = 0, 0
        self.loss_sum, self.loss_n = 0.0, 0.0

    def serve(self) -> dict[str, Any]:
        self._evaluate(None)
        while any(r not in self.stopped for r in self.active):
            try:
                sender = self.inbox.take()
            except SenderLost as lost:
                self._lose(lost.sender, str(lost))
                self._answer()
                continue
            if self.version + len(self.pending) < self.budget:
                self.clocks[sender] += 1
                self.pending.append(sender)
                self.batch_sizes[sender] = float(self.buffers[sender][self.m])
            self.waiting.add(sender)
            if sender not in self._answer() and sender in self.waiting:
                self.gated += 1
        self.inbox.close()
        out = final_state(self.trainer)
        out["staleness"] = self.staleness
        return out

    def _answer(self) -> list[int]:
        """Reply to every held worker the gate lets go (all of them once the budget is
        spent), applying what arrived first; returns the ranks answered."""
        answered: list[int] = []
        while True:
            done = self.version + len(self.pending) >= self.budget
            go = sorted(self.waiting) if done else released(self.clocks, self.waiting,
                                                            self.bound)
            if not go:
                break
            self._apply()
            for r in go:
                if not done:
                    self.gap_max = max(self.gap_max, self.clocks[r] - min(self.clocks.values()))
                self.waiting.discard(r)
                self._reply(r, done)
                answered.append(r)
        if answered:
            self._after_update()
        return answered

    def _apply(self) -> None:
        """One update from every gradient not yet applied: Σ n_i g_i / B, then the optimiser."""
        if not self.pending:
            return
        ranks, m = sorted(self.pending), self.m
        self.pending.clear()
        counts = [float(self.buffers[r][m]) for r in ranks]
        with self.ctx.recorder.span("compute"):
            total = weighted_mean_into(self.grad, [self.buffers[r][:m] for r in ranks], counts)
            if total != self.global_batch:  # a partial clock: its share of one sync step
                self.grad.mul_(total / self.global_batch)
            self.opt.step(self.grad, gradients=len(ranks))  # the LR schedule counts them
        for r, n in zip(ranks, counts):
            self.staleness.append(self.version - int(self.buffers[r][m + 2]))
            self.loss_sum += float(self.buffers[r][m + 1]) * n
        self.loss_n += total
        self.samples += int(total)
        self.version += len(ranks)

    def _reply(self, r: int, done: bool) -> None:
        self.model.tail[0] = STOP if done else self.version
        if done:  # expect nothing more from this worker
            self.inbox.forget(r)
            self.stopped.add(r)
        else:
            self.inbox.release(r)
        try:
            self.ctx.comm.send(self.model.buffer, r, payload_bytes=self.payload)
        except RuntimeError:
            self._lose(r, "its connection closed while receiving the model")

    def _lose(self, r: int, reason: str) -> None:
        """Drop a lost worker (or fail the run): it leaves the clock minimum and B."""
        self.ctx.worker_lost(r, reason)  # raises unless on_worker_loss allows going on
        self.active.remove(r)
        self.clocks.pop(r, None)
        self.waiting.discard(r)
        self.inbox.forget(r)
        self.global_batch -= self.batch_sizes.get(r, float(self.ctx.exp.batch_size))
        if not self.active:
            raise RuntimeError("every worker was lost")

    def _after_update(self) -> None:
        """Checkpoint, evaluate and report once a new round of N updates is complete."""
        exp = self.ctx.exp
        if self.version // exp.workers <= self.rnd or not self.loss_n:
            return
        self.rnd = self.version // exp.workers
        self.ctx.set_step(self.rnd)
        maybe_checkpoint(self.ctx, self.trainer, self.opt, self.rnd, self.samples)
        if should_eval(self.rnd, exp.steps, exp.eval_every):
            self._evaluate(self.loss_sum / self.loss_n)
            self.loss_sum, self.loss_n = 0.0, 0.0
        self.ctx.reporter.progress(self.rnd, exp.steps, self.samples)

    def _evaluate(self, train_loss: float | None) -> None:
        clocks = [self.clocks.get(r) for r in range(1, self.ctx.exp.workers + 1)]
        evaluate(self.ctx, self.trainer, self.rnd, self.samples, train_loss,
                 updates=self.version, clocks=clocks, clock_gap_max=self.gap_max,
                 gated=self.gated)
