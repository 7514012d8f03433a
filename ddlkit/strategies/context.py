"""What a strategy gets to work with on one rank, passed in explicitly."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ddlkit.comm import Communicator, Recorder
from ddlkit.comm.protocol import Reporter
from ddlkit.config import Experiment
from ddlkit.faults import FaultPlan


@dataclass
class Context:
    """One rank's view of a run: its identity, communicator, recorder and reporter."""

    exp: Experiment
    rank: int
    world_size: int
    role: str
    worker_index: int
    comm: Communicator
    recorder: Recorder
    reporter: Reporter
    faults: FaultPlan
    #: where the model's holder saves checkpoints (None: it does not)
    checkpoint_dir: str | None = None
    #: the checkpoint this run resumes from (None: a fresh start)
    resume: dict[str, Any] | None = None

    def set_step(self, step: int) -> None:
        """Tag subsequent events with ``step`` and apply any fault planned for it."""
        self.recorder.step = step
        self.reporter.maybe_flush()
        self.faults.before_step(step)

    def worker_lost(self, rank: int, reason: str) -> None:
        """A server lost a worker: carry on if the experiment allows it, else fail."""
        if not self.exp.continues_after_worker_loss:
            raise RuntimeError(f"worker rank {rank} was lost and on_worker_loss="
                               f"{self.exp.on_worker_loss!r} stops the run: {reason}")
        self.reporter.lost(rank, self.recorder.step, reason)
