"""Convergence: a metric against steps, wall-clock seconds or bytes sent.

The same runs ranked on three clocks: per step sync usually wins, per second async can
win (nobody waits for the straggler), per byte the all-reduce spreads what the server
had to carry alone.
"""
from __future__ import annotations

from typing import Any, Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from ddlkit.data import DATASETS
from ddlkit.plots._style import (
    as_list,
    byte_axis,
    message,
    new_figure,
    run_labels,
    run_line,
    style,
    training_start,
)
from ddlkit.runtime.result import RunResult

X_AXES: tuple[str, ...] = ("step", "time", "bytes", "samples")
#: the three clocks of :func:`convergence_panel`
PANEL_AXES: tuple[str, ...] = ("step", "time", "bytes")
METRICS: tuple[str, ...] = ("test_loss", "accuracy", "train_loss")
X_LABELS: dict[str, str] = {
    "step": "step (one gradient per worker)",
    "time": "wall-clock time since training start (s)",
    "bytes": "data sent by all ranks (bytes)",
    "samples": "training samples used (all workers)",
}


def check_axis(x: str, metric: str) -> None:
    """Raise ValueError for an unknown x axis or metric."""
    if x not in X_AXES:
        raise ValueError(f"x: {x!r} is not allowed; use one of {', '.join(map(repr, X_AXES))}")
    if metric not in METRICS:
        raise ValueError(f"metric: {metric!r} is not allowed; use one of "
                         f"{', '.join(map(repr, METRICS))}")


def metric_label(metric: str, dataset: str) -> str:
    """Axis label of a metric, naming the loss the dataset is trained with."""
    if metric == "accuracy":
        return "test accuracy (%)"
    loss = "cross-entropy" if DATASETS[dataset].is_classification else "mean squared error"
    return f"{'test' if metric == 'test_loss' else 'training'} loss ({loss})"


def series(rows: Sequence[dict[str, Any]], x: str, metric: str,
           t0: float = 0.0) -> tuple[list[float], list[float]]:
    """(x values, metric values) of the history rows whose metric is known.

    ``x="time"`` gives seconds since ``t0``.
    """
    key = {"step": "step", "time": "t", "bytes": "bytes", "samples": "samples"}[x]
    xs: list[float] = []
    ys: list[float] = []
    for row in rows:
        y = row.get(metric)
        if y is None or row.get(key) is None:
            continue
        xs.append(row[key] - t0 if x == "time" else row[key])
        ys.append(y)
    return xs, ys


def draw_metric(ax: Axes, runs: Sequence[RunResult], labels: Sequence[str], x: str,
                metric: str) -> int:
    """Plot one line per run on ``ax``; returns how many runs had data."""
    drawn = 0
    for i, (r, label) in enumerate(zip(runs, labels)):
        xs, ys = series(r.history, x, metric, training_start(r))
        if not xs:
            continue
        ax.plot(xs, ys, label=label, **run_line(i))
        drawn += 1
    dataset = runs[0].config.dataset
    if not drawn:
        why = ("no accuracy: regression has no classes" if metric == "accuracy"
               and not DATASETS[dataset].is_classification else "no evaluation recorded yet")
        message(ax, why)
        return 0
    decorate(ax, x, metric, dataset)
    return drawn


def decorate(ax: Axes, x: str, metric: str, dataset: str) -> None:
    """Axis labels with units, byte or percent ticks."""
    ax.set_xlabel(X_LABELS[x])
    ax.set_ylabel(metric_label(metric, dataset))
    if x == "bytes":
        byte_axis(ax.xaxis)
    elif x in ("step", "samples"):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    if metric == "accuracy":
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))


def convergence(results: RunResult | Sequence[RunResult], x: str = "step",
                metric: str = "test_loss", log_y: bool = False) -> Figure:
    """One metric of one or several runs against steps, wall-clock seconds, bytes sent or
    training samples used.

    ``log_y`` puts the metric on a log scale (useful when the first loss dwarfs the rest).
    """
    check_axis(x, metric)
    runs = as_list(results)
    labels = run_labels(runs)
    with style():
        fig = new_figure(8, 5)
        ax = fig.add_subplot()
        if draw_metric(ax, runs, labels, x, metric):
            ax.legend(loc="best")
            if log_y:
                ax.set_yscale("log")
        ax.set_title(f"{metric_label(metric, runs[0].config.dataset).split(' (')[0]} "
                     f"by {'wall-clock time' if x == 'time' else x}")
    return fig


def convergence_panel(results: RunResult | Sequence[RunResult], log_y: bool = False
                      ) -> Figure:
    """Test loss against steps, seconds and bytes side by side (accuracy below if known).

    The three axes on which sync and async trade places. ``log_y``: loss on a log scale.
    """
    runs = as_list(results)
    labels = run_labels(runs)
    has_acc = any(row.get("accuracy") is not None for r in runs for row in r.history)
    metrics = ["test_loss", "accuracy"] if has_acc else ["test_loss"]
    with style():
        fig = new_figure(16, 4.6 * len(metrics) + 0.8)
        axes = fig.subplots(len(metrics), len(PANEL_AXES), squeeze=False, sharex="col")
        for row, metric in enumerate(metrics):
            for col, x in enumerate(PANEL_AXES):
                ax = axes[row][col]
                if draw_metric(ax, runs, labels, x, metric) and log_y and metric != "accuracy":
                    ax.set_yscale("log")
                if row < len(metrics) - 1:
                    ax.set_xlabel("")
        handles, names = axes[0][0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, names, loc="outside upper center", ncols=min(len(names), 3),
                       frameon=False)
        for col, title in enumerate(("per step", "per second", "per byte")):
            axes[0][col].set_title(title, fontweight="bold")
    return fig
