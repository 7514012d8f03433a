"""Where each rank's time went: compute, evaluation, communication, waiting."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from ddlkit.plots._style import (
    KIND_COLORS,
    as_list,
    kind_legend,
    message,
    new_figure,
    rank_name,
    run_labels,
    style,
)
from ddlkit.runtime.result import RunResult

#: stacking order (bottom to top) and the RankTotals field each kind comes from
FIELDS: dict[str, str] = {"compute": "compute_s", "evaluation": "eval_s",
                          "communication": "comm_s", "waiting": "wait_s"}


def time_breakdown(results: RunResult | Sequence[RunResult]) -> Figure:
    """Stacked bars per rank of compute, evaluation, communication and waiting seconds;
    one panel per run, on a shared seconds axis.
    """
    runs = as_list(results)
    labels = run_labels(runs)
    widths = [max(len(r.ranks), 1) for r in runs]
    with style():
        fig = new_figure(min(16.0, max(7.0, 0.9 * sum(widths) + 1.5 * len(runs) + 1.0)), 5.6)
        axes = fig.subplots(1, len(runs), squeeze=False, sharey=True,
                            width_ratios=widths)[0]
        for ax, r, label in zip(axes, runs, labels):
            ax.set_title(label.replace(" · ", "\n", 1), fontsize=13)
            if not r.ranks:
                message(ax, "no rank totals")
                continue
            x = np.arange(len(r.ranks))
            bottom = np.zeros(len(r.ranks))
            for kind, name in FIELDS.items():
                heights = np.array([getattr(t, name) for t in r.ranks], dtype=float)
                ax.bar(x, heights, 0.65, bottom=bottom, color=KIND_COLORS[kind],
                       gid=f"{kind}")
                bottom += heights
            names = [rank_name(r, t.rank) for t in r.ranks]
            crowded = sum(widths) > 14 or len(r.ranks) > 6
            ax.set_xticks(x, [n.replace("worker ", "w") if len(r.ranks) > 6 else n
                              for n in names],
                          rotation=30 if crowded else 0, ha="right" if crowded else "center")
            ax.grid(axis="x", visible=False)
        axes[0].set_ylabel("time per rank (s)")
        kind_legend(fig, list(FIELDS))
    return fig
