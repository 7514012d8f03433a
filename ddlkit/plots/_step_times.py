"""Step times: how long each synchronous step took, and how long the slowest ones were."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from ddlkit.analysis.metrics import step_times
from ddlkit.plots._style import as_list, new_figure, run_color, run_labels, style
from ddlkit.runtime.result import RunResult

#: the percentile marked as "the tail"
TAIL = 90


def step_time_distribution(results: RunResult | Sequence[RunResult]) -> Figure:
    """Step times of one or more runs: per step (left) and as a sorted distribution (right).

    Times come from :func:`ddlkit.analysis.metrics.step_times` (the server's steps in ``sync``),
    in milliseconds. The right panel sorts each run's steps from fastest to slowest (the
    empirical distribution) and marks its 90th percentile, the tail a straggler makes.
    """
    runs = as_list(results)
    labels = run_labels(runs)
    with style():
        fig = new_figure(14, 5)
        per_step, dist = fig.subplots(1, 2)
        for i, (run, label) in enumerate(zip(runs, labels)):
            ms = step_times(run) * 1000.0
            if ms.size == 0:
                continue
            color = run_color(i)
            per_step.plot(np.arange(1, ms.size + 1), ms, color=color, linewidth=1.6,
                          label=label, gid=f"steps-{i}")
            share = (np.arange(1, ms.size + 1) - 0.5) / ms.size
            tail = float(np.percentile(ms, TAIL))
            dist.plot(np.sort(ms), share, color=color, drawstyle="steps-post",
                      label=f"{label}\np{TAIL} {tail:.0f} ms, max {ms.max():.0f} ms",
                      gid=f"distribution-{i}")
            dist.axvline(tail, color=color, linestyle="--", linewidth=1.5, gid=f"p{TAIL}-{i}")
        per_step.set_title("Time of each step")
        per_step.set_xlabel("step")
        per_step.set_ylabel("step time (ms)")
        per_step.set_ylim(bottom=0)
        dist.set_title(f"Distribution of step times (dashed: p{TAIL})")
        dist.set_xlabel("step time (ms)")
        dist.set_ylabel("share of steps at most this long")
        dist.set_ylim(0, 1)
        dist.set_xlim(left=0)
        dist.legend(loc="lower right", fontsize=10)
    return fig
