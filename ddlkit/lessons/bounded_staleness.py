"""The bounded-delay trade-off: sweep the SSP staleness bound s from sync to async.

Li et al. 2014 ("Scaling distributed machine learning with the parameter server", OSDI,
§5.1) measured the same job under a growing maximal delay: the larger the delay, the less
time workers spend waiting, but the more stale, and so less useful, each update is.
:func:`sweep_staleness` runs one experiment in mode ``ssp`` at several bounds s and
returns a :class:`StalenessSweep` that reads both sides of the trade-off off the runs:
the wall time to finish (waiting) and the loss at the end or at a fixed wall time
(quality). Times count from a run's first evaluation, so process start-up is excluded.
The waiting is also counted in the straggler's steps (the slowest worker's clock), which
no load on the machine can change: each costs the straggler's sleep.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from ddlkit.analysis.metrics import loss_at, time_to_loss
from ddlkit.config import Experiment, staleness_label
from ddlkit.runtime.result import RunResult

#: write this for s = ∞ (no bound: async's schedule)
INF = None


@dataclass(frozen=True)
class StalenessSweep:
    """Runs of one experiment at several staleness bounds (None = ∞), in sweep order."""

    base: Experiment
    bounds: tuple[int | None, ...]
    results: tuple[RunResult, ...]

    def labels(self) -> list[str]:
        return [staleness_label(b) for b in self.bounds]

    def finish_s(self) -> list[float]:
        """Wall time from the first to the last evaluation of each run (seconds)."""
        return [r.training_s for r in self.results]

    def final_loss(self) -> list[float]:
        """Test loss at the end of each run."""
        return [float(r.final["test_loss"]) for r in self.results]

    def loss_at(self, seconds: float) -> list[float | None]:
        """Test loss of each run ``seconds`` into training (see :func:`loss_at`)."""
        return [loss_at(r, seconds) for r in self.results]

    def time_to(self, target: float) -> list[float | None]:
        """Seconds each run took to reach test loss ≤ ``target`` (None: never)."""
        return [time_to_loss(r, target) for r in self.results]

    def slowest_steps_to(self, target: float) -> list[int | None]:
        """Steps the slowest worker had done (min_j c_j) when each run first reached test
        loss ≤ ``target`` (None: never). With a straggler that sleeps every step, this counts
        the sleeps a run had to wait for: the part of its time no busy machine can change."""
        out: list[int | None] = []
        for r in self.results:
            row = next((h for h in r.history if h.get("test_loss") is not None
                        and h["test_loss"] <= target), None)
            out.append(None if row is None else _slowest(row))
        return out

    def slowest_steps(self) -> list[int | None]:
        """Steps the slowest worker had done when each run ended."""
        return [_slowest(r.final) for r in self.results]

    def table(self, target: float | None = None) -> str:
        """One line per bound: finish time, final loss, mean/max staleness, time to target."""
        head = f"{'bound':>6} {'finish s':>8} {'final loss':>10} {'staleness':>14}"
        lines = [head + (f" {'to ' + format(target, 'g'):>8}" if target is not None else "")]
        for label, r in zip(self.labels(), self.results):
            st = r.staleness or [0]
            line = (f"{label:>6} {r.training_s:>8.2f} {r.final['test_loss']:>10.3f} "
                    f"{sum(st) / len(st):>6.2f} max {max(st):>3}")
            if target is not None:
                t = time_to_loss(r, target)
                line += f" {'never' if t is None else format(t, '.2f'):>8}"
            lines.append(line)
        return "\n".join(lines)


def _slowest(row: Mapping[str, Any]) -> int | None:
    """min_j c_j over the live workers' clocks of an evaluation row (None without clocks)."""
    clocks = [c for c in row.get("clocks") or () if c is not None]
    return min(clocks) if clocks else None


def sweep_staleness(base: Experiment, bounds: Sequence[int | None],
                    run: Callable[[Experiment], RunResult] | None = None) -> StalenessSweep:
    """Run ``base`` in mode ``ssp`` once per bound (None, or any s ≥ ``steps``, is ∞).

    ``run`` defaults to :func:`ddlkit.run`; runs go one after the other, so they compare.
    """
    for b in bounds:
        if b is not None and (isinstance(b, bool) or not isinstance(b, int) or b < 0):
            raise ValueError(f"bounds: {b!r} is not allowed; a whole number ≥ 0, or None for ∞")
    plan = {i: base.replace(mode="ssp", staleness_bound=b) for i, b in enumerate(bounds)}
    bounds = tuple(exp.staleness_limit for exp in plan.values())
    if run is None:
        from ddlkit.analysis.sweep import run_all
        results = tuple(run_all(plan).values())
    else:
        results = tuple(run(exp) for exp in plan.values())
    return StalenessSweep(base, bounds, results)
