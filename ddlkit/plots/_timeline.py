"""The timeline: what every rank did, second by second, and who waited for whom.

A blocked communication is split (by :func:`ddlkit.comm.accounting.split_wait`) into
*waiting*, until the peer had posted its side too, then *communication*.
"""
from __future__ import annotations

from collections import defaultdict

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ddlkit.comm.accounting import split_wait
from ddlkit.plots._style import (
    KIND_COLORS,
    kind_legend,
    message,
    new_figure,
    rank_name,
    style,
    training_start,
    world_size,
)
from ddlkit.runtime.result import RunResult

KINDS: tuple[str, ...] = ("compute", "evaluation", "communication", "waiting")
ROW_HEIGHT = 0.7


def window_end(result: RunResult, max_steps: int | None) -> float | None:
    """When every worker has finished step ``max_steps`` (None: show the whole run).

    That is the latest end of a worker event tagged with a step ≤ ``max_steps``.
    """
    if max_steps is None:
        return None
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps: {max_steps!r} is not allowed; use None or a whole "
                         "number ≥ 1")
    workers = {r for r in range(world_size(result)) if rank_name(result, r) != "server"}
    ends = [e.t_end for e in result.events if e.rank in workers and 0 < e.step <= max_steps]
    return max(ends) if ends else None


def spans(result: RunResult, until: float | None = None
          ) -> dict[tuple[int, str], list[tuple[float, float]]]:
    """(rank, kind) → [(start, width), …] in seconds on the run's clock.

    Waiting is split from communication over *all* events (so a cut-off window does not
    turn matched messages into unmatched ones); with ``until``, spans are cut there.
    """
    events = sorted(result.events, key=lambda e: (e.rank, e.t_post))
    waits = split_wait(events)
    out: dict[tuple[int, str], list[tuple[float, float]]] = defaultdict(list)
    end = float("inf") if until is None else until

    def add(rank: int, kind: str, start: float, width: float) -> None:
        width = min(width, end - start)
        if width > 0:
            out[(rank, kind)].append((start, width))

    for i, e in enumerate(events):
        if e.t_post >= end:
            continue
        if e.op in ("compute", "eval"):
            add(e.rank, "compute" if e.op == "compute" else "evaluation", e.t_post,
                e.t_end - e.t_post)
            continue
        w = waits.get(i, 0.0)
        add(e.rank, "waiting", e.t_wait, w)
        add(e.rank, "communication", e.t_wait + w, e.t_end - e.t_wait - w)
    return out


def timeline(result: RunResult, max_steps: int | None = None) -> Figure:
    """One row per rank with compute, evaluation, communication and waiting spans.

    The picture of who waited for whom. ``max_steps`` zooms in on the first steps.
    Time counts from the first recorded event (process start-up excluded).
    """
    until = window_end(result, max_steps)
    n = world_size(result)
    t0 = training_start(result)
    with style():
        fig = new_figure(15, 1.6 + 0.55 * n)
        ax = fig.add_subplot()
        title = f"Timeline · {result.config.label()}"
        if max_steps is not None:
            title += f" · first {max_steps} steps"
        ax.set_title(title)
        by_kind = spans(result, until)
        if not by_kind:
            message(ax, "no events recorded")
            return fig
        for (rank, kind), bars in sorted(by_kind.items()):
            shifted = [(start - t0, width) for start, width in bars]
            ax.broken_barh(shifted, (rank - ROW_HEIGHT / 2, ROW_HEIGHT),
                           facecolors=KIND_COLORS[kind], edgecolor="none", gid=f"{kind}:{rank}",
                           antialiased=False)
        ax.set_yticks(range(n), [rank_name(result, r) for r in range(n)])
        ax.set_ylim(n - 0.5, -0.5)
        right = max(s + w for bars in by_kind.values() for s, w in bars)
        ax.set_xlim(0, (right if until is None else until) - t0)
        ax.set_xlabel("wall-clock time since training start (s)")
        ax.grid(axis="y", visible=False)
        _mark_ends(ax, result, t0, until)
        kind_legend(fig, KINDS)
    return fig


def _mark_ends(ax: Axes, result: RunResult, t0: float, until: float | None) -> None:
    """A red cross where a lost or failed rank's row stops, labelled with what happened.

    A killed process takes its last unsent events with it (ranks send them in batches),
    so its row may stop a little early; with no events at all, the cross goes where the
    parent noticed the loss (or, for a failed run, at the last recorded event).
    """
    noticed = {int(x["rank"]): x.get("t") for x in result.lost}
    marks = {int(x["rank"]): x.get("how", "lost") for x in result.lost}
    failed = result.meta.get("failed_rank")
    if failed is not None:
        marks[int(failed)] = "failed: " + (result.error or "").split(") ", 1)[-1]
    last_event = max((e.t_end for e in result.events), default=t0)
    for rank, how in marks.items():
        ends = [e.t_end for e in result.events if e.rank == rank]
        end = max(ends) if ends else (noticed.get(rank) or last_event)
        if until is not None and end > until:
            continue
        x = end - t0
        ax.plot([x], [rank], marker="X", markersize=14, color="#d62728", gid=f"end:{rank}",
                linestyle="none")
        ax.annotate(how, (x, rank), xytext=(8, -10), textcoords="offset points",
                    color="#d62728", fontsize=11)
