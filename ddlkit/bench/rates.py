"""Steady rates read off a :class:`~ddlkit.runtime.result.RunResult` for the benchmarks."""
from __future__ import annotations

from ddlkit.runtime.result import RunResult


def steady_rate(result: RunResult, key: str = "samples") -> float:
    """``key`` (``samples``, or ``updates`` in async) per second of training.

    The window runs from the first evaluation row to the last, which leaves start-up out
    (:attr:`RunResult.training_samples_per_s` uses the same window). Evaluations inside
    the window (at least the final one, on rank 0) are not training, so the time of
    rank 0's ``eval`` spans there is taken out too: a baseline that never evaluates is
    then compared on training alone.
    """
    if len(result.history) < 2:
        raise ValueError("a steady rate needs at least two evaluation rows")
    first, last = result.history[0], result.history[-1]
    evals = sum(e.t_end - e.t_post for e in result.events
                if e.op == "eval" and e.rank == 0 and e.t_post >= first["t"])
    return (last[key] - first[key]) / (last["t"] - first["t"] - evals)
