"""Several runs side by side: loss by time and by bytes, then where each run ended."""
from __future__ import annotations

from typing import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from ddlkit.plots._convergence import draw_metric, metric_label
from ddlkit.plots._style import as_list, new_figure, run_color, run_labels, style
from ddlkit.runtime.result import RunResult


def comparison(results: RunResult | Sequence[RunResult]) -> Figure:
    """Runs overlaid: test loss by wall-clock time and by bytes sent (top), and bars of
    each run's final accuracy (final test loss for regression) and training time (bottom).
    """
    runs = as_list(results)
    labels = run_labels(runs)
    with style():
        fig = new_figure(15, 6.6 + 0.55 * len(runs))
        top, bottom = fig.subfigures(2, 1, squeeze=False,
                                     height_ratios=[5.2, 0.55 * len(runs) + 1.4])[:, 0]
        ax_time, ax_bytes = top.subplots(1, 2, sharey=True)
        draw_metric(ax_time, runs, labels, "time", "test_loss")
        draw_metric(ax_bytes, runs, labels, "bytes", "test_loss")
        ax_time.set_title("loss by wall-clock time", fontweight="bold")
        ax_bytes.set_title("loss by bytes sent", fontweight="bold")
        ax_bytes.set_ylabel("")
        ax_final, ax_train = bottom.subplots(1, 2, sharey=True)
        _final_bars(ax_final, runs, labels)
        _time_bars(ax_train, runs)
        handles, names = ax_time.get_legend_handles_labels()
        if handles:
            top.legend(handles, names, loc="outside upper center", ncols=min(len(names), 3),
                       frameon=False)
    return fig


def final_score(r: RunResult) -> tuple[str, float | None]:
    """("accuracy" or "test_loss", its value at the last evaluation)."""
    acc = r.final.get("accuracy")
    if acc is not None:
        return "accuracy", float(acc)
    loss = r.final.get("test_loss")
    return "test_loss", None if loss is None else float(loss)


def _final_bars(ax: Axes, runs: Sequence[RunResult], labels: Sequence[str]) -> None:
    scores = [final_score(r) for r in runs]
    metric = scores[0][0]
    ys = list(range(len(runs)))[::-1]
    values = [v if v is not None and k == metric else 0.0 for k, v in scores]
    bars = ax.barh(ys, values, color=[run_color(i) for i in range(len(runs))], height=0.6)
    ax.set_yticks(ys, labels)
    ax.set_xlabel(f"final {metric_label(metric, runs[0].config.dataset)}")
    if metric == "accuracy":
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
        ax.set_xlim(0, 1.12)
        texts = [f"{v:.1%}" for v in values]
    else:
        ax.set_xlim(0, max(values + [1e-12]) * 1.25)
        texts = [f"{v:.3g}" for v in values]
    ax.bar_label(bars, texts, padding=4)
    ax.grid(axis="y", visible=False)


def _time_bars(ax: Axes, runs: Sequence[RunResult]) -> None:
    ys = list(range(len(runs)))[::-1]
    values = [r.training_s for r in runs]
    bars = ax.barh(ys, values, color=[run_color(i) for i in range(len(runs))], height=0.6)
    ax.tick_params(axis="y", labelleft=False)
    ax.set_xlabel("training wall-clock time, first to last evaluation (s)")
    ax.set_xlim(0, max(values + [1e-12]) * 1.25)
    ax.bar_label(bars, [f"{v:.2f} s" for v in values], padding=4)
    ax.grid(axis="y", visible=False)
