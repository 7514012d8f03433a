"""``LivePlot``: a convergence figure that grows while a run goes (no widget code)."""
from __future__ import annotations

import time
from typing import Any, Callable

from matplotlib.figure import Figure

from ddlkit.config import Experiment
from ddlkit.data import DATASETS
from ddlkit.plots._convergence import check_axis, decorate, metric_label, series
from ddlkit.plots._style import message, new_figure, run_color, style
from ddlkit.runtime.live import EvalPoint, Progress

#: default least time between two draws (seconds)
MIN_INTERVAL_S = 0.3


class LivePlot:
    """Collects live events of one run and draws what has arrived so far.

    Feed it every event of ``ddlkit.run(..., on_event=plot.update)``: it keeps the
    evaluation rows (:class:`~ddlkit.runtime.live.EvalPoint`) and the latest
    :class:`~ddlkit.runtime.live.Progress`, and ignores the rest. ``due()`` throttles drawing so
    that plotting never slows training; ``figure()`` draws.
    """

    def __init__(self, experiment: Experiment, x: str = "step",
                 min_interval_s: float = MIN_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        check_axis(x, "test_loss")
        self.experiment = experiment
        self.x = x
        self.min_interval_s = min_interval_s
        self.rows: list[dict[str, Any]] = []
        self.progress: Progress | None = None
        self._clock = clock
        self._last_draw: float | None = None
        self._changed = False

    def update(self, event: object) -> None:
        """Store an evaluation row or the latest progress; other events are ignored."""
        if isinstance(event, EvalPoint):
            self.rows.append(dict(event.row))
            self._changed = True
        elif isinstance(event, Progress):
            self.progress = event
            self._changed = True

    def due(self) -> bool:
        """True when something new arrived and ``min_interval_s`` has passed since the
        last ``figure()`` (always true for the first draw)."""
        if not self._changed:
            return False
        return self._last_draw is None or self._clock() - self._last_draw >= self.min_interval_s

    def figure(self) -> Figure:
        """A fresh figure: test loss (and accuracy for classification) so far."""
        self._last_draw = self._clock()
        self._changed = False
        exp = self.experiment
        metrics = ["test_loss"]
        if DATASETS[exp.dataset].is_classification:
            metrics.append("accuracy")
        t0 = float(self.rows[0]["t"]) if self.rows else 0.0
        with style():
            fig = new_figure(6.2 * len(metrics), 4.4)
            axes = fig.subplots(1, len(metrics), squeeze=False)[0]
            for i, (ax, metric) in enumerate(zip(axes, metrics)):
                xs, ys = series(self.rows, self.x, metric, t0)
                if not xs:
                    message(ax, "waiting for the first evaluation…")
                    ax.set_title(metric_label(metric, exp.dataset).split(" (")[0])
                    continue
                ax.plot(xs, ys, marker="o", color=run_color(0),
                        label=exp.label() if i == 0 else None)
                decorate(ax, self.x, metric, exp.dataset)
                if self.x == "step":
                    ax.set_xlim(-0.02 * exp.steps, 1.02 * exp.steps)
                    if self.progress is not None:
                        ax.axvline(self.progress.step, color="#888888", linestyle=":",
                                   linewidth=1.5)
                if metric == "accuracy":
                    ax.set_ylim(0, 1)
            first = axes[0]
            if first.get_legend_handles_labels()[0]:
                first.legend(loc="upper right")
            fig.suptitle(self._status())
        return fig

    def _status(self) -> str:
        p = self.progress
        if p is None:
            return f"{self.experiment.label()} · starting"
        return f"step {p.step} of {p.total} · {p.samples:,} samples · {p.t:.1f} s since start"
