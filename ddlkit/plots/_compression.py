"""Compression: accuracy against bytes sent, and what a worker pushed and pulled.

Left, test accuracy against the bytes all ranks sent, on a log axis, so a run that sends
50 times less shows as a curve shifted far to the left. Right, one worker's payload bytes
over the run: gradient bytes pushed against bytes pulled. On a parameter server only the
push is compressed; the pull (the model) stays the full size.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, PercentFormatter

from ddlkit.plots._convergence import series
from ddlkit.plots._style import (
    RECEIVED_COLOR,
    SENT_COLOR,
    as_list,
    format_bytes,
    message,
    new_figure,
    run_labels,
    run_line,
    style,
)
from ddlkit.runtime.result import RunResult


def compression(results: RunResult | Sequence[RunResult],
                labels: Sequence[str] | None = None) -> Figure:
    """Accuracy by bytes sent (log scale) and each run's pushed vs pulled bytes per worker.

    ``labels`` names the runs (default: their experiment labels).
    """
    runs = as_list(results)
    names = list(labels) if labels is not None else run_labels(runs)
    if len(names) != len(runs):
        raise ValueError(f"labels: {len(names)} given for {len(runs)} runs; one per run")
    with style():
        fig = new_figure(15, 5.2 + 0.3 * len(runs))
        ax_acc, ax_bars = fig.subplots(1, 2, width_ratios=[1.2, 1])
        _accuracy_by_bytes(ax_acc, runs, names)
        _push_pull(ax_bars, runs, names)
    return fig


def _accuracy_by_bytes(ax: Axes, runs: Sequence[RunResult], names: Sequence[str]) -> None:
    drawn = 0
    for i, (r, name) in enumerate(zip(runs, names)):
        xs, ys = series(r.history, "bytes", "accuracy")
        kept = [(x, y) for x, y in zip(xs, ys) if x > 0]  # step 0 sent nothing: not on a log axis
        if kept:
            ax.plot(*zip(*kept), label=name, **run_line(i))
            drawn += 1
    if not drawn:
        message(ax, "no accuracy recorded (a classification dataset is needed)")
        return
    _log_bytes(ax)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.set_xlabel("data sent by all ranks (bytes, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("accuracy by bytes sent", fontweight="bold")
    ax.legend(loc="lower right")


def _push_pull(ax: Axes, runs: Sequence[RunResult], names: Sequence[str]) -> None:
    workers = [next((t for t in r.ranks if t.role == "worker"), None) for r in runs]
    if any(w is None for w in workers):
        message(ax, "no worker traffic recorded")
        return
    pushed = [w.payload_sent for w in workers if w is not None]
    pulled = [w.payload_received for w in workers if w is not None]
    ys = np.arange(len(runs))[::-1]
    height = 0.38
    b_push = ax.barh(ys + height / 2, pushed, height, color=SENT_COLOR, gid="pushed",
                     label="pushed (gradient sent)")
    b_pull = ax.barh(ys - height / 2, pulled, height, color=RECEIVED_COLOR, gid="pulled",
                     label="pulled (received)")
    ax.set_yticks(ys, names)
    _log_bytes(ax)
    ax.bar_label(b_push, [format_bytes(v) for v in pushed], padding=3, fontsize=10)
    ax.bar_label(b_pull, [format_bytes(v) for v in pulled], padding=3, fontsize=10)
    ax.set_xlim(min(pushed + pulled) / 3, max(pushed + pulled) * 6)
    ax.set_xlabel("payload bytes of one worker over the run (log scale)")
    ax.set_title("one worker: pushed vs pulled", fontweight="bold")
    ax.grid(axis="y", visible=False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=2, frameon=False)


def _log_bytes(ax: Axes) -> None:
    """A log-scale x axis of bytes, each decade labelled in its own unit (10 KB, 100 KB…)."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: format_bytes(x)))
    ax.xaxis.set_minor_formatter(NullFormatter())
