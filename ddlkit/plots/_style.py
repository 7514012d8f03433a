"""What every view shares: colours, projector-sized fonts, byte ticks, rank names, clocks."""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Sequence

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import Formatter, MaxNLocator

from ddlkit.modes import MODES
from ddlkit.runtime.result import RunResult
from ddlkit.units import byte_unit, format_bytes

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType  # the names rcParams knows (matplotlib >= 3.9)

#: one colour per kind of time, the same in every view (Okabe–Ito, colour-blind safe)
KIND_COLORS: dict[str, str] = {
    "compute": "#0072B2",        # blue
    "communication": "#E69F00",  # orange
    "waiting": "#CC79A7",        # reddish purple
    "evaluation": "#009E73",     # green
}
SENT_COLOR = "#0072B2"
RECEIVED_COLOR = "#56B4E9"
#: colours of runs overlaid in one plot, in the order the runs are given
RUN_COLORS: tuple[str, ...] = ("#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00",
                               "#56B4E9", "#000000", "#F0E442")
RUN_MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*")
RUN_DASHES: tuple[str, ...] = ("-", "--", "-.", ":")

#: font sizes that stay readable on a projector
RC: dict[RcKeyType, Any] = {
    "font.size": 13, "axes.titlesize": 14, "axes.labelsize": 13, "xtick.labelsize": 12,
    "ytick.labelsize": 12, "legend.fontsize": 12, "figure.titlesize": 15,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "grid.alpha": 0.3, "lines.linewidth": 2.2, "lines.markersize": 6,
}



def style() -> AbstractContextManager[Any]:
    """The rcParams every ddlkit figure is built under (fonts are fixed when text is made)."""
    return mpl.rc_context(RC)


def new_figure(width: float, height: float) -> Figure:
    """A figure not registered with pyplot, so a notebook shows it exactly once."""
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def as_list(results: RunResult | Sequence[RunResult]) -> list[RunResult]:
    """One run or several, as a non-empty list."""
    runs = [results] if isinstance(results, RunResult) else list(results)
    if not runs:
        raise ValueError("results: got no run; pass a RunResult or a list of them")
    for r in runs:
        if not isinstance(r, RunResult):
            raise TypeError(f"results: expected RunResult objects, got {type(r).__name__}")
    return runs


def run_labels(runs: Sequence[RunResult]) -> list[str]:
    """Legend labels from ``config.label()``; repeated labels get ``#2``, ``#3``, …"""
    labels: list[str] = []
    for r in runs:
        base = r.config.label()
        n = sum(1 for x in labels if x == base or x.startswith(base + " #"))
        labels.append(base if n == 0 else f"{base} #{n + 1}")
    return labels


def run_color(i: int) -> str:
    """The colour of the i-th run of a comparison."""
    return RUN_COLORS[i % len(RUN_COLORS)]


def run_line(i: int) -> dict[str, Any]:
    """Colour, marker and dash of the i-th run's line, so identical curves stay visible."""
    return {"color": run_color(i), "marker": RUN_MARKERS[i % len(RUN_MARKERS)],
            "linestyle": RUN_DASHES[i % len(RUN_DASHES)]}


def rank_name(result: RunResult, rank: int) -> str:
    """``server`` or ``worker k`` (k counts from 1) for a rank of this run."""
    mode = MODES[result.config.mode]
    if mode.role(rank) == "server":
        return "server"
    return f"worker {mode.worker_index(rank) + 1}"


def world_size(result: RunResult) -> int:
    """Ranks in the run, from its totals, its events or its config."""
    if result.ranks:
        return len(result.ranks)
    return result.config.world_size


def training_start(result: RunResult) -> float:
    """Seconds from run start to the first recorded event: process start-up ends here.

    Every time axis counts from this moment, so a cold start (importing torch in a new
    process) does not shift one run against another.
    """
    if result.events:
        return min(e.t_post for e in result.events)
    if result.history:
        return float(result.history[0]["t"])
    return 0.0


class ByteFormatter(Formatter):
    """Tick labels in one unit per axis (B, KB, MB or GB), picked from the axis range."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        lo, hi = self.axis.get_view_interval() if self.axis is not None else (x, x)
        top = max(abs(lo), abs(hi))
        unit = byte_unit(top)
        return format_bytes(x, unit)


def byte_axis(axis: Any) -> None:
    """Format an x or y axis holding byte counts."""
    axis.set_major_formatter(ByteFormatter())
    axis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))


def kind_legend(fig: Figure, kinds: Sequence[str], **kwargs: Any) -> None:
    """A figure legend naming the kinds of time by their shared colours."""
    handles = [Patch(facecolor=KIND_COLORS[k], label=k) for k in kinds]
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles),
               frameon=False, **kwargs)


def message(ax: Axes, text: str) -> None:
    """Write a notice in the middle of an empty axes."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", wrap=True,
            fontsize=14, color="#444444")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for side in ax.spines.values():
        side.set_visible(False)
