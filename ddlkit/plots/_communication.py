"""Who moved the bytes: per-rank traffic, message counts and bytes sent over time."""
from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ddlkit.comm.events import COLLECTIVE_OPS
from ddlkit.plots._style import (
    RECEIVED_COLOR,
    SENT_COLOR,
    byte_axis,
    format_bytes,
    message,
    new_figure,
    rank_name,
    run_color,
    style,
    training_start,
)
from ddlkit.runtime.result import RunResult

#: above this many ranks, bar labels are tilted and values are not written on bars
CROWDED = 4


def rank_tick(result: RunResult, rank: int) -> str:
    """A bar's label, e.g. ``server (rank 0)`` or ``worker 2 (rank 2)``."""
    return f"{rank_name(result, rank)} (rank {rank})"


def communication(result: RunResult) -> Figure:
    """Bytes and messages sent and received per rank (the server's hot spot), and
    cumulative bytes sent over time, per rank and in all.
    """
    with style():
        fig = new_figure(15, 9)
        grid = fig.add_gridspec(2, 2)
        ax_bytes = fig.add_subplot(grid[0, 0])
        ax_msgs = fig.add_subplot(grid[0, 1])
        ax_time = fig.add_subplot(grid[1, :])
        fig.suptitle(f"Communication · {result.config.label()}")
        if not result.ranks:
            for ax in (ax_bytes, ax_msgs, ax_time):
                message(ax, "no communication recorded")
            return fig
        ranks = [r.rank for r in result.ranks]
        ticks = [rank_tick(result, r) for r in ranks]
        _pair_bars(ax_bytes, ticks, [r.bytes_sent for r in result.ranks],
                   [r.bytes_received for r in result.ranks], as_bytes=True)
        ax_bytes.set_ylabel("data (bytes)")
        ax_bytes.set_title("bytes per rank", fontweight="bold")
        _pair_bars(ax_msgs, ticks, [r.messages_sent for r in result.ranks],
                   [r.messages_received for r in result.ranks], as_bytes=False)
        ax_msgs.set_ylabel("messages (count)")
        ax_msgs.set_title("messages per rank", fontweight="bold")
        _cumulative(ax_time, result)
    return fig


def _pair_bars(ax: Axes, ticks: list[str], sent: list[int], received: list[int],
               as_bytes: bool) -> None:
    x = np.arange(len(ticks))
    width = 0.4
    b_sent = ax.bar(x - width / 2, sent, width, color=SENT_COLOR, label="sent", gid="sent")
    b_recv = ax.bar(x + width / 2, received, width, color=RECEIVED_COLOR, label="received",
                    gid="received")
    crowded = len(ticks) > CROWDED
    ax.set_xticks(x, ticks, rotation=30 if crowded else 0, ha="right" if crowded else "center")
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper right")
    if as_bytes:
        byte_axis(ax.yaxis)
    else:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if not crowded:
        fmt = format_bytes if as_bytes else str
        ax.bar_label(b_sent, [fmt(v) for v in sent], padding=2, fontsize=10)
        ax.bar_label(b_recv, [fmt(v) for v in received], padding=2, fontsize=10)
    ax.set_ylim(0, max(sent + received + [1]) * 1.18)


def _cumulative(ax: Axes, result: RunResult) -> None:
    t0 = training_start(result)
    sent = [e for e in result.events if e.op == "send" or e.op in COLLECTIVE_OPS]
    if not sent:
        message(ax, "no message was sent")
        return
    sent.sort(key=lambda e: e.t_end)
    times = np.array([e.t_end for e in sent]) - t0
    nbytes = np.array([e.nbytes for e in sent], dtype=np.int64)
    ranks = np.array([e.rank for e in sent])
    for rank in range(len(result.ranks)):
        mine = ranks == rank
        if mine.any():
            ax.step(np.r_[0.0, times[mine]], np.r_[0, np.cumsum(nbytes[mine])], where="post",
                    color=run_color(rank), label=rank_name(result, rank), gid=f"rank{rank}")
    ax.step(np.r_[0.0, times], np.r_[0, np.cumsum(nbytes)], where="post", color="#333333",
            linestyle="--", label="all ranks", gid="total")
    ax.set_xlabel("wall-clock time since training start (s)")
    ax.set_ylabel("cumulative data sent (bytes)")
    ax.set_title("bytes sent over time", fontweight="bold")
    byte_axis(ax.yaxis)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", ncols=2 if len(result.ranks) > 4 else 1)
