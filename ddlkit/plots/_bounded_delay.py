"""The bounded-delay trade-off: SSP runs at several staleness bounds s, side by side.

Left, waiting: wall time each run took to finish (and to reach a target loss). Right,
quality: the test loss at the end (and at a fixed wall time). Li et al. 2014 (OSDI, §5.1)
drew the same two sides for a growing maximal delay.
"""
from __future__ import annotations

from typing import Sequence

from matplotlib.figure import Figure

from ddlkit.analysis.metrics import loss_at, time_to_loss
from ddlkit.config import staleness_label
from ddlkit.modes import MODES
from ddlkit.plots._convergence import metric_label
from ddlkit.plots._style import as_list, message, new_figure, run_color, style
from ddlkit.runtime.result import RunResult


def bounded_delay(results: RunResult | Sequence[RunResult], target: float | None = None,
                  at_s: float | None = None) -> Figure:
    """Finish time (left) and final test loss (right) of ``ssp`` runs against s (∞ last).

    ``target`` adds each run's time to test loss ≤ target (left, missing where never
    reached); ``at_s`` adds each run's test loss ``at_s`` seconds into training (right).
    """
    runs = sorted(as_list(results), key=_order)
    for r in runs:
        if "staleness_bound" not in MODES[r.config.mode].settings:
            raise ValueError(f"results: a run in mode {r.config.mode!r}; bounded_delay() "
                             "compares runs in mode 'ssp' at different staleness_bound")
    xs = list(range(len(runs)))
    ticks = [staleness_label(r.config.staleness_limit).removeprefix("s=") for r in runs]
    with style():
        fig = new_figure(14, 5)
        ax_time, ax_loss = fig.subplots(1, 2)
        fig.suptitle(f"Bounded delay · {runs[0].config.label().split(' · ', 2)[-1]}")
        ax_time.plot(xs, [r.training_s for r in runs], color=run_color(0), marker="o",
                     label="finish (all steps × workers gradients)", gid="finish")
        if target is not None:
            reached = [(x, time_to_loss(r, target)) for x, r in zip(xs, runs)]
            pts = [(x, t) for x, t in reached if t is not None]
            if pts:
                ax_time.plot(*zip(*pts), color=run_color(1), marker="s", linestyle="--",
                             label=f"test loss ≤ {target:g}", gid="to_target")
            for x, t in reached:
                if t is None:
                    ax_time.annotate("never", (x, 0), ha="center", va="bottom",
                                     color=run_color(1))
        ax_time.set_ylabel("wall-clock time since training start (s)")
        ax_time.set_title("waiting: time (lower is faster)", fontweight="bold")
        finals = [r.final.get("test_loss") for r in runs]
        if any(v is not None for v in finals):
            ax_loss.plot(xs, finals, color=run_color(0), marker="o", label="at the end",
                         gid="final_loss")
            if at_s is not None:
                ax_loss.plot(xs, [loss_at(r, at_s) for r in runs], color=run_color(2),
                             marker="^", linestyle=":", label=f"after {at_s:g} s",
                             gid="loss_at")
            ax_loss.set_ylabel(metric_label("test_loss", runs[0].config.dataset))
        else:
            message(ax_loss, "no evaluation recorded")
        ax_loss.set_title("quality: test loss (lower is better)", fontweight="bold")
        for ax in (ax_time, ax_loss):
            ax.set_xticks(xs, ticks)
            ax.set_xlabel("staleness bound s (steps a worker may run ahead; ∞ = async)")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="best")
        ax_time.set_ylim(bottom=0)
    return fig


def _order(r: RunResult) -> float:
    bound = r.config.staleness_limit
    return float("inf") if bound is None else float(bound)
