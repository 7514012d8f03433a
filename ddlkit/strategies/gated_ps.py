"""What the ``async`` and ``ssp`` parameter servers share: a server that answers each push
once a gate lets its worker go, and the workers' side of their protocol.

A worker tags each gradient with the version of the model it was computed on (the number
of updates applied when it pulled) and gets back the model and its version, or
:data:`STOP`. Worker i's clock c_i counts the gradients it pushed. The server folds every
gradient received into the model before any reply, so a reply always holds its worker's
own gradient; then it answers every waiting worker its mode's gate lets go. ``async``
(Dean et al. 2012) opens the gate at once and applies each gradient on its own; ``ssp``
(Ho et al. 2013, §2) opens it by the clocks and folds the gradients into one update.
"""
from __future__ import annotations

from typing import Any

from ddlkit.comm.inbox import SenderLost
from ddlkit.config import Experiment
from ddlkit.strategies import ps
from ddlkit.strategies.common import evaluate, final_state
from ddlkit.strategies.context import Context

STOP = -1.0  # the version in a reply that tells a worker to stop


def worker(ctx: Context) -> None:
    """An async or SSP worker: push gradients tagged with the version pulled, until stop."""
    ps.work(ctx, _resumed_version, _next_version)


def _resumed_version(exp: Experiment, step: int) -> float:
    """Async and SSP: the version a worker resuming at round ``step`` holds."""
    return step * exp.workers


def _next_version(exp: Experiment, step: int, tail: float) -> tuple[int, int] | None:
    """Async and SSP: the reply's tail is the version pulled (the next tag), or STOP."""
    return None if tail == STOP else (step + 1, int(tail))


class GatedServer(ps.PSServer):
    """The server's loop for async and SSP; a mode supplies :meth:`gate` and :meth:`update`.

    The run spends a budget of ``steps × workers`` gradients; then every reply says
    :data:`STOP`. Every N updates end a round: checkpoint, evaluation and progress, as a
    step of sync does.
    """

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.budget = ctx.exp.steps * ctx.exp.workers
        self.rnd = self.start
        self.version = self.start * ctx.exp.workers  # updates applied
        self.clocks = {r: self.start for r in self.live}
        self.waiting: set[int] = set()  # delivered a gradient, reply held back
        self.pending: list[int] = []  # gradients received but not yet applied
        self.stopped: set[int] = set()  # told to stop
        self.staleness: list[int] = []  # per applied gradient: version now − version pulled
        self.gap_max = 0  # the largest c_i − min_j c_j at which a reply was sent
        self.gated = 0  # replies the gate held back

    def gate(self) -> list[int]:
        """The waiting workers that may start their next step now, in rank order."""
        raise NotImplementedError

    def update(self, ranks: list[int]) -> None:
        """Apply the gradients of ``ranks`` (in rank order) to the model."""
        raise NotImplementedError

    def report(self) -> dict[str, Any]:
        """What an evaluation row carries besides the metrics."""
        return {"updates": self.version}

    def serve(self) -> dict[str, Any]:
        evaluate(self.ctx, self.trainer, self.rnd, self.samples, None, **self.report())
        while any(r not in self.stopped for r in self.live):
            try:
                sender = self.inbox.take()  # whichever worker's gradient arrived first
            except SenderLost as lost:
                self.lose(lost.sender, str(lost))
                self._answer()
                continue
            if self.version + len(self.pending) < self.budget:
                self.accept(sender)
            self.waiting.add(sender)
            if sender not in self._answer() and sender in self.waiting:
                self.gated += 1
        self.inbox.close()
        out = final_state(self.trainer)
        out["staleness"] = self.staleness
        return out

    def accept(self, sender: int) -> None:
        """Take a gradient within the budget: it ticks its worker's clock, waits to be applied."""
        self.clocks[sender] += 1
        self.pending.append(sender)

    def lose(self, rank: int, reason: str) -> None:
        super().lose(rank, reason)
        self.clocks.pop(rank, None)  # it leaves the clock minimum
        self.waiting.discard(rank)

    def _answer(self) -> list[int]:
        """Reply to every held worker the gate lets go (all of them once the budget is
        spent), applying what arrived first; returns the ranks answered."""
        answered: list[int] = []
        while True:
            done = self.version + len(self.pending) >= self.budget
            go = sorted(self.waiting) if done else self.gate()
            if not go:
                break
            self._apply()
            for r in go:
                if not done:
                    self.gap_max = max(self.gap_max, self.clocks[r] - min(self.clocks.values()))
                self.waiting.discard(r)
                if done:
                    self.stopped.add(r)
                self.reply(r, STOP if done else self.version, more=not done)
                answered.append(r)
        if answered:
            self._end_of_round()
        return answered

    def _apply(self) -> None:
        """Apply every gradient not yet applied (the mode's :meth:`update`), and count them."""
        if not self.pending:
            return
        ranks = sorted(self.pending)
        self.pending.clear()
        self.update(ranks)
        for r in ranks:
            header = self.headers[r]
            self.staleness.append(self.version - header.version)
            self.loss.add(header.loss * header.samples, header.samples)
            self.samples += int(header.samples)
        self.version += len(ranks)

    def _end_of_round(self) -> None:
        """Checkpoint, evaluate and report once a new round of N updates is complete."""
        if self.version // self.ctx.exp.workers <= self.rnd or not self.loss.count:
            return
        self.rnd = self.version // self.ctx.exp.workers
        self.ctx.set_step(self.rnd)
        self.end_of_step(self.rnd, **self.report())
