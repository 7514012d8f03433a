"""Measurements read off a finished run: when it reached a loss, and how long its steps took."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from ddlkit.runtime.result import RunResult


def step_times(result: RunResult, rank: int = 0) -> np.ndarray:
    """Seconds each step took on ``rank`` (the server in ``sync``), steps 1, 2, … in order.

    Step t runs from the end of the rank's last event of step t−1 (its last send or
    evaluation) to the end of its last event of step t other than an evaluation. For a
    sync server that is the wait for the gradients, the update and the broadcast: the
    time the whole cluster spends on the step. Evaluations are left out, so
    ``eval_every`` does not pollute the distribution.
    """
    last_any: dict[int, float] = defaultdict(lambda: -np.inf)
    last_work: dict[int, float] = defaultdict(lambda: -np.inf)
    for e in result.events:
        if e.rank != rank:
            continue
        last_any[e.step] = max(last_any[e.step], e.t_end)
        if e.op != "eval":
            last_work[e.step] = max(last_work[e.step], e.t_end)
    steps = sorted(s for s in last_work if s >= 1 and s - 1 in last_any)
    return np.array([last_work[s] - last_any[s - 1] for s in steps], dtype=np.float64)


def _first_reaching(result: RunResult, target: float) -> dict[str, Any] | None:
    """The first history row whose test loss is at or below ``target``."""
    for row in result.history:
        loss = row.get("test_loss")
        if loss is not None and loss <= target:
            return row
    return None


def time_to_loss(result: RunResult, target: float) -> float | None:
    """Seconds from the first evaluation to the first evaluation with test loss ≤ ``target``
    (None if the run never got there). Resolution is one evaluation (``eval_every``)."""
    row = _first_reaching(result, target)
    return None if row is None else float(row["t"] - result.history[0]["t"])


def steps_to_loss(result: RunResult, target: float) -> int | None:
    """The step (round of N gradients, in async) of that first evaluation, or None."""
    row = _first_reaching(result, target)
    return None if row is None else int(row["step"])


def bytes_to_loss(result: RunResult, target: float) -> int | None:
    """Bytes sent by all ranks up to that first evaluation, or None."""
    row = _first_reaching(result, target)
    return None if row is None else int(row["bytes"])


def loss_at(result: RunResult, seconds: float) -> float | None:
    """Test loss of the last evaluation at most ``seconds`` after the first (None if the
    first evaluation had no loss)."""
    t0, loss = result.history[0]["t"], None
    for row in result.history:
        if row["t"] - t0 <= seconds and row.get("test_loss") is not None:
            loss = float(row["test_loss"])
    return loss
