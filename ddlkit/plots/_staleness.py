"""Staleness: how many server versions old the model behind each applied gradient was."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ddlkit.plots._style import message, new_figure, run_color, style
from ddlkit.runtime.result import RunResult


def staleness(result: RunResult) -> Figure:
    """Histogram of staleness values (one bar per integer), the mean marked.

    Staleness = server version when a gradient is applied − version the worker computed
    it on. A synchronous run has none, and says so.
    """
    values = np.asarray(result.staleness, dtype=np.int64)
    with style():
        fig = new_figure(8, 5)
        ax = fig.add_subplot()
        ax.set_title(f"Staleness · {result.config.label()}")
        if values.size == 0:
            message(ax, f"No staleness in this run (mode {result.config.mode!r}):\n"
                        "every gradient is computed on the current model.")
            return fig
        low = min(0, int(values.min()))
        counts = np.bincount(values - low)
        levels = np.arange(low, low + counts.size)
        ax.bar(levels, counts, width=0.85, color=run_color(1), gid="staleness")
        mean = float(values.mean())
        ax.axvline(mean, color="#D55E00", linestyle="--", linewidth=2.5,
                   label=f"mean {mean:.2f}", gid="mean")
        ax.set_xlabel("staleness (server versions behind)")
        ax.set_ylabel("applied gradients (count)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(axis="x", visible=False)
        ax.legend(title=f"{values.size} gradients, max {values.max()}", loc="upper right")
    return fig
