"""The α–β cost model's predictions: step time and busiest-rank bytes against N."""
from __future__ import annotations

from typing import Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

from ddlkit.analysis.step_time import Comparison, PredictionTable
from ddlkit.modes import MODES
from ddlkit.plots._style import byte_axis, new_figure, run_color, style


def cost_prediction(table: PredictionTable, measured: Sequence[Comparison] = ()) -> Figure:
    """Predicted seconds per step (left) and bytes per step through the busiest rank
    (right) against the number of workers, one line per mode and network. ``measured``
    runs (:func:`ddlkit.analysis.step_time.measure_and_compare`) are drawn as crosses at their
    measured step time, on the prediction line of their mode and network.
    """
    with style():
        fig = new_figure(15, 6)
        ax_t, ax_b = fig.subplots(1, 2)
        fig.suptitle("PREDICTION (α–β model, measured compute) · "
                     f"{table.rows[0].n_params:,} parameters" if table.rows else "PREDICTION")
        keys = list(dict.fromkeys((r.mode, r.network) for r in table.rows))
        dashes = ("-", "--", "-.", ":")
        networks = list(dict.fromkeys(r.network for r in table.rows))
        modes = list(dict.fromkeys(r.mode for r in table.rows))
        for mode, network in keys:
            rows = sorted((r for r in table.rows if (r.mode, r.network) == (mode, network)),
                          key=lambda r: r.workers)
            line = dict(color=run_color(modes.index(mode)),
                        linestyle=dashes[networks.index(network) % len(dashes)], marker="o",
                        label=f"{MODES[mode].label}, {network}",
                        gid=f"predicted:{mode}:{network}")
            xs = [r.workers for r in rows]
            ax_t.plot(xs, [r.total_s for r in rows], **line)
            ax_b.plot(xs, [r.busiest_bytes for r in rows], **line)
        for c in measured:
            ax_t.plot([c.exp.workers], [c.measured_s], marker="X", markersize=12,
                      linestyle="none", color=run_color(modes.index(c.exp.mode))
                      if c.exp.mode in modes else "black",
                      gid=f"measured:{c.exp.mode}:{c.exp.workers}")
        if measured:
            ax_t.plot([], [], marker="X", linestyle="none", color="black",
                      label="measured, on the emulated network")
        workers = sorted({r.workers for r in table.rows})
        for ax in (ax_t, ax_b):
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_locator(FixedLocator(workers))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticks(workers, [str(n) for n in workers])
            ax.set_xlabel("workers N")
        ax_t.set_yscale("log")
        ax_t.set_ylabel("predicted time per step (s)")
        ax_t.set_title("step time", fontweight="bold")
        ax_b.set_ylabel("predicted bytes per step, busiest rank")
        ax_b.set_title("traffic through the busiest rank", fontweight="bold")
        byte_axis(ax_b.yaxis)
        ax_t.legend(loc="upper left", fontsize=10)
    return fig
