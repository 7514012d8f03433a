"""ddlkit.plots: every figure holds the run's own numbers, labelled, with pyplot left alone.

Expected values come from the RunResult itself (history, events, per-rank totals) or are
recomputed here from the raw arrays, never from the plotting code.
"""
from __future__ import annotations

import io
import re
import time
from collections import defaultdict
from typing import Any, Callable

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

import ddlkit
from ddlkit import plots
from ddlkit.comm.events import COLLECTIVE_OPS
from ddlkit.data import load_dataset, make_shards
from ddlkit.runtime.live import CommEvents, EvalPoint, Progress, RankReady

BYTE_TICK = re.compile(r"^(0|[\d.]+ (B|KB|MB|GB))$")


# -- real runs, made once ------------------------------------------------------------
@pytest.fixture(scope="module")
def runs() -> dict[str, Any]:
    """A sync, an async run with a straggler (its live events kept) and an all-reduce."""
    live: list[Any] = []
    out: dict[str, Any] = {
        "sync": ddlkit.run(ddlkit.Experiment(mode="sync", workers=2, dataset="iris",
                                             batch_size=16, steps=20, eval_every=5)),
        "async": ddlkit.run(ddlkit.Experiment(mode="async", workers=3, dataset="digits",
                                              steps=30, eval_every=10,
                                              worker_delays=(0, 0, 0.01)),
                            on_event=live.append),
        "allreduce": ddlkit.run(ddlkit.Experiment(mode="allreduce", workers=2, dataset="iris",
                                                  batch_size=16, steps=20, eval_every=5)),
    }
    out["live"] = live
    for key in ("sync", "async", "allreduce"):
        assert out[key].status == "ok", out[key].error
    return out


def all_runs(runs: dict[str, Any]) -> list[ddlkit.RunResult]:
    return [runs["sync"], runs["async"], runs["allreduce"]]


def regression_result(history: bool = True) -> ddlkit.RunResult:
    """A hand-made regression result (no accuracy), without starting processes."""
    rows = [{"step": s, "samples": 32 * s, "t": 0.1 * s, "train_loss": None if s == 0 else 1.0,
             "test_loss": 2.0 / (s + 1), "accuracy": None, "bytes": 1000 * s}
            for s in range(0, 20, 5)] if history else []
    return ddlkit.RunResult(config=ddlkit.Experiment(dataset="linreg", steps=15), history=rows)


# -- helpers -------------------------------------------------------------------------
def start_of(result: ddlkit.RunResult) -> float:
    """Time axes count from the first recorded event."""
    return min(e.t_post for e in result.events)


def expected_series(result: ddlkit.RunResult, x: str, metric: str) -> tuple[list, list]:
    rows = [row for row in result.history if row.get(metric) is not None]
    if x == "step":
        xs = [row["step"] for row in rows]
    elif x == "time":
        xs = [row["t"] - start_of(result) for row in rows]
    else:
        xs = [row["bytes"] for row in rows]
    return xs, [row[metric] for row in rows]


def line_of(ax: Axes, label: str) -> Any:
    lines = [ln for ln in ax.get_lines() if ln.get_label() == label]
    assert len(lines) == 1, f"expected one line labelled {label!r}, got {len(lines)}"
    return lines[0]


def legend_texts(fig: Figure, ax: Axes | None = None) -> list[str]:
    legend = ax.get_legend() if ax is not None else fig.legends[0]
    assert legend is not None, "no legend"
    return [t.get_text() for t in legend.get_texts()]


def render(fig: Figure) -> None:
    """Draw the figure for real (tick labels are made at draw time)."""
    fig.savefig(io.BytesIO(), format="png", dpi=40)


def bars(ax: Axes, gid: str) -> list[Any]:
    return [p for p in ax.patches if p.get_gid() == gid]


def span_widths(ax: Axes) -> dict[str, list[float]]:
    """gid → widths of the rectangles of each broken_barh collection."""
    out: dict[str, list[float]] = {}
    for coll in ax.collections:
        if isinstance(coll, PolyCollection) and coll.get_gid():
            out[coll.get_gid()] = [float(np.ptp(p.vertices[:, 0])) for p in coll.get_paths()]
    return out


# -- convergence ---------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["test_loss", "accuracy", "train_loss"])
@pytest.mark.parametrize("x", ["step", "time", "bytes"])
def test_convergence_lines_hold_the_history(runs, x, metric):
    results = all_runs(runs)
    fig = plots.convergence(results, x=x, metric=metric)
    ax = fig.axes[0]
    for r in results:
        xs, ys = expected_series(r, x, metric)
        line = line_of(ax, r.config.label())
        np.testing.assert_allclose(line.get_xdata(), xs, rtol=0, atol=1e-12)
        np.testing.assert_allclose(line.get_ydata(), ys, rtol=0, atol=1e-12)
    assert legend_texts(fig, ax) == [r.config.label() for r in results]
    unit = {"step": "step", "time": "(s)", "bytes": "bytes"}[x]
    assert unit in ax.get_xlabel()
    assert ("%" if metric == "accuracy" else "cross-entropy") in ax.get_ylabel()


def test_byte_axis_ticks_carry_units(runs):
    fig = plots.convergence(runs["async"], x="bytes")
    render(fig)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    ticks = [t.get_text() for t in ax.get_xticklabels() if lo <= t.get_position()[0] <= hi]
    assert ticks and all(BYTE_TICK.match(t) for t in ticks), ticks
    assert any(t.endswith(("KB", "MB")) for t in ticks), ticks


def test_convergence_panel_three_clocks_and_accuracy(runs):
    results = all_runs(runs)
    fig = plots.convergence_panel(results)
    assert len(fig.axes) == 6
    assert legend_texts(fig) == [r.config.label() for r in results]
    for i, (x, metric) in enumerate([(x, m) for m in ("test_loss", "accuracy")
                                     for x in ("step", "time", "bytes")]):
        for r in results:
            xs, ys = expected_series(r, x, metric)
            line = line_of(fig.axes[i], r.config.label())
            np.testing.assert_allclose(line.get_xdata(), xs, rtol=0, atol=1e-12)
            np.testing.assert_allclose(line.get_ydata(), ys, rtol=0, atol=1e-12)
    assert [ax.get_xlabel() != "" for ax in fig.axes] == [False] * 3 + [True] * 3


def test_regression_has_no_accuracy_row_and_says_so():
    r = regression_result()
    panel = plots.convergence_panel(r)
    assert len(panel.axes) == 3
    assert "mean squared error" in panel.axes[0].get_ylabel()
    fig = plots.convergence(r, metric="accuracy")
    assert fig.axes[0].get_lines() == []
    assert any("regression" in t.get_text() for t in fig.axes[0].texts)


def test_empty_history_is_a_message_not_an_error():
    fig = plots.convergence(regression_result(history=False))
    assert any("no evaluation" in t.get_text() for t in fig.axes[0].texts)


def test_bad_arguments_name_the_field(runs):
    with pytest.raises(ValueError, match="x: 'epochs'"):
        plots.convergence(runs["sync"], x="epochs")
    with pytest.raises(ValueError, match="metric: 'f1'"):
        plots.convergence(runs["sync"], metric="f1")
    with pytest.raises(ValueError, match="max_steps"):
        plots.timeline(runs["sync"], max_steps=0)
    with pytest.raises(ValueError, match="results"):
        plots.convergence([])


# -- communication -------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["sync", "allreduce"])
def test_communication_bars_are_the_rank_totals(runs, mode):
    r = runs[mode]
    fig = plots.communication(r)
    ax_bytes, ax_msgs, ax_time = fig.axes
    assert [b.get_height() for b in bars(ax_bytes, "sent")] == [t.bytes_sent for t in r.ranks]
    assert [b.get_height() for b in bars(ax_bytes, "received")] == [
        t.bytes_received for t in r.ranks]
    assert [b.get_height() for b in bars(ax_msgs, "sent")] == [t.messages_sent for t in r.ranks]
    assert [b.get_height() for b in bars(ax_msgs, "received")] == [
        t.messages_received for t in r.ranks]
    ticks = [t.get_text() for t in ax_bytes.get_xticklabels()]
    if mode == "sync":
        assert ticks == ["server (rank 0)", "worker 1 (rank 1)", "worker 2 (rank 2)"]
    else:
        assert ticks == ["worker 1 (rank 0)", "worker 2 (rank 1)"]
    assert "bytes" in ax_bytes.get_ylabel() and "count" in ax_msgs.get_ylabel()
    assert "(s)" in ax_time.get_xlabel() and "bytes" in ax_time.get_ylabel()
    # cumulative lines end at what each rank sent, and at the run's total
    for t in r.ranks:
        line = [ln for ln in ax_time.get_lines() if ln.get_gid() == f"rank{t.rank}"][0]
        assert line.get_ydata()[-1] == t.bytes_sent
    total = [ln for ln in ax_time.get_lines() if ln.get_gid() == "total"][0]
    sent = sorted((e.t_end, e.nbytes) for e in r.events
                  if e.op == "send" or e.op in COLLECTIVE_OPS)
    np.testing.assert_allclose(total.get_xdata()[1:], [t - start_of(r) for t, _ in sent],
                               rtol=0, atol=1e-12)
    assert total.get_ydata()[-1] == r.total_bytes == sum(n for _, n in sent)


def test_server_is_the_hot_spot(runs):
    r = runs["async"]
    heights = [b.get_height() for b in bars(plots.communication(r).axes[0], "sent")]
    assert heights[0] == max(heights) == r.ranks[0].bytes_sent


# -- timeline ------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["sync", "async", "allreduce"])
def test_timeline_spans_add_up_to_the_events(runs, mode):
    r = runs[mode]
    fig = plots.timeline(r)
    ax = fig.axes[0]
    widths = span_widths(ax)
    durations: dict[tuple[int, str], list[float]] = defaultdict(list)
    for e in r.events:
        if e.op in ("compute", "eval"):
            durations[(e.rank, e.op)].append(e.t_end - e.t_post)
    for t in r.ranks:
        for op, kind in (("compute", "compute"), ("eval", "evaluation")):
            got = widths.get(f"{kind}:{t.rank}", [])
            assert len(got) == len(durations[(t.rank, op)])
            assert abs(sum(got) - sum(durations[(t.rank, op)])) < 1e-9
        # blocked time splits into waiting and communication exactly as the totals do
        assert abs(sum(widths.get(f"waiting:{t.rank}", [])) - t.wait_s) < 1e-9
        assert abs(sum(widths.get(f"communication:{t.rank}", [])) - t.comm_s) < 1e-9
    names = [t.get_text() for t in ax.get_yticklabels()]
    if mode == "allreduce":
        assert names == [f"worker {k + 1}" for k in range(len(r.ranks))]
    else:
        assert names == ["server"] + [f"worker {k}" for k in range(1, len(r.ranks))]
    assert "(s)" in ax.get_xlabel()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "compute", "evaluation", "communication", "waiting"]


def test_timeline_max_steps_zooms_in(runs):
    r = runs["sync"]
    k = 3
    full = plots.timeline(r).axes[0]
    ax = plots.timeline(r, max_steps=k).axes[0]
    widths = span_widths(ax)
    right = ax.get_xlim()[1]
    assert right < full.get_xlim()[1]  # a window, not the whole run
    for rank in range(1, len(r.ranks)):
        assert k <= len(widths[f"compute:{rank}"]) <= k + 1
    for coll in ax.collections:  # spans are cut at the window's edge
        assert max(p.vertices[:, 0].max() for p in coll.get_paths()) <= right + 1e-12


def test_timeline_draws_10k_events_with_one_collection_per_rank_and_kind(runs):
    base = runs["async"]
    period = max(e.t_end for e in base.events) - start_of(base) + 0.01
    copies = 10_000 // len(base.events) + 1
    events = [e._replace(t_post=e.t_post + c * period, t_wait=e.t_wait + c * period,
                         t_end=e.t_end + c * period)
              for c in range(copies) for e in base.events]
    big = ddlkit.RunResult(config=base.config, ranks=base.ranks, events=events)
    assert len(events) >= 10_000
    t0 = time.perf_counter()
    fig = plots.timeline(big)
    render(fig)
    elapsed = time.perf_counter() - t0
    assert len(fig.axes[0].collections) <= 4 * len(base.ranks)
    assert elapsed < 6.0, f"timeline of {len(events)} events took {elapsed:.1f} s"


# -- time breakdown ------------------------------------------------------------------
def test_time_breakdown_stacks_the_rank_totals(runs):
    results = all_runs(runs)
    fig = plots.time_breakdown(results)
    assert len(fig.axes) == len(results)
    for ax, r in zip(fig.axes, results):
        assert ax.get_title().replace("\n", " · ") == r.config.label()
        bottom = np.zeros(len(r.ranks))
        for kind, field in (("compute", "compute_s"), ("evaluation", "eval_s"),
                            ("communication", "comm_s"), ("waiting", "wait_s")):
            stack = bars(ax, kind)
            np.testing.assert_allclose([b.get_height() for b in stack],
                                       [getattr(t, field) for t in r.ranks], rtol=0, atol=1e-12)
            np.testing.assert_allclose([b.get_y() for b in stack], bottom, rtol=0, atol=1e-12)
            bottom += [getattr(t, field) for t in r.ranks]
    assert "(s)" in fig.axes[0].get_ylabel()


def test_kind_colours_agree_between_views(runs):
    r = runs["async"]
    timeline_ax = plots.timeline(r).axes[0]
    breakdown_ax = plots.time_breakdown(r).axes[0]
    for kind in ("compute", "communication", "waiting", "evaluation"):
        coll = [c for c in timeline_ax.collections if c.get_gid() == f"{kind}:0"][0]
        bar = bars(breakdown_ax, kind)[0]
        np.testing.assert_allclose(coll.get_facecolor()[0], bar.get_facecolor())


# -- staleness -----------------------------------------------------------------------
def test_staleness_histogram_counts_every_gradient(runs):
    r = runs["async"]
    assert r.staleness
    ax = plots.staleness(r).axes[0]
    stack = bars(ax, "staleness")
    heights = [b.get_height() for b in stack]
    assert sum(heights) == len(r.staleness)
    centres = [round(b.get_x() + b.get_width() / 2) for b in stack]
    for level, height in zip(centres, heights):
        assert height == sum(1 for s in r.staleness if s == level)
    mean = [ln for ln in ax.get_lines() if ln.get_gid() == "mean"][0]
    assert mean.get_xdata()[0] == pytest.approx(np.mean(r.staleness))
    assert "count" in ax.get_ylabel()


def test_sync_run_has_no_staleness_and_says_so(runs):
    ax = plots.staleness(runs["sync"]).axes[0]
    assert ax.patches == [] or not bars(ax, "staleness")
    assert any("No staleness" in t.get_text() for t in ax.texts)


# -- shards --------------------------------------------------------------------------
def counts_by_hand(labels: np.ndarray, parts: list[np.ndarray], n_classes: int) -> np.ndarray:
    return np.array([[int(np.sum(labels[p] == c)) for c in range(n_classes)] for p in parts])


def test_shards_heatmap_is_the_label_distribution():
    labels = np.array([0, 0, 1, 2, 2, 2, 1, 0])
    parts = [np.array([0, 1, 2]), np.array([3, 4, 5, 6, 7])]
    fig = plots.shards(labels, parts, 3, title="toy")
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), counts_by_hand(labels, parts, 3))
    assert sorted(t.get_text() for t in ax.texts) == sorted(
        str(v) for v in counts_by_hand(labels, parts, 3).ravel())
    assert ax.get_title() == "toy"


def test_shards_for_builds_shards_like_a_worker():
    exp = ddlkit.Experiment(workers=4, dataset="digits", sharding="dirichlet",
                            dirichlet_alpha=0.3, seed=3)
    data = load_dataset("digits")
    labels = data.y_train.numpy()
    parts = make_shards("dirichlet", labels, len(labels), 4, seed=3, dirichlet_alpha=0.3)
    ax = plots.shards_for(exp).axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), counts_by_hand(labels, parts, 10))
    assert [t.get_text() for t in ax.get_yticklabels()][0].startswith("worker 1")


def test_shards_for_stream_and_regression():
    stream = plots.shards_for(ddlkit.Experiment(workers=3, sharding="stream")).axes[0]
    assert not stream.images
    assert any("no fixed shards" in t.get_text() for t in stream.texts)
    exp = ddlkit.Experiment(workers=3, dataset="linreg", sharding="unbalanced", size_ratio=4.0)
    ax = plots.shards_for(exp).axes[0]
    parts = make_shards("unbalanced", None, load_dataset("linreg").info.n_train, 3, seed=0,
                        size_ratio=4.0)
    assert [b.get_height() for b in bars(ax, "shard sizes")] == [len(p) for p in parts]
    assert "count" in ax.get_ylabel()


# -- comparison ----------------------------------------------------------------------
def test_comparison_overlays_runs_and_ranks_their_ends(runs):
    results = all_runs(runs)
    fig = plots.comparison(results)
    ax_time, ax_bytes, ax_final, ax_train = fig.axes
    for ax, x in ((ax_time, "time"), (ax_bytes, "bytes")):
        for r in results:
            xs, ys = expected_series(r, x, "test_loss")
            line = line_of(ax, r.config.label())
            np.testing.assert_allclose(line.get_xdata(), xs, rtol=0, atol=1e-12)
            np.testing.assert_allclose(line.get_ydata(), ys, rtol=0, atol=1e-12)
    assert legend_texts(fig.subfigs[0]) == [r.config.label() for r in results]
    np.testing.assert_allclose([b.get_width() for b in ax_final.patches],
                               [r.history[-1]["accuracy"] for r in results])
    np.testing.assert_allclose([b.get_width() for b in ax_train.patches],
                               [r.history[-1]["t"] - r.history[0]["t"] for r in results])
    assert "(s)" in ax_train.get_xlabel() and "accuracy" in ax_final.get_xlabel()


# -- LivePlot ------------------------------------------------------------------------
def test_liveplot_draws_the_live_rows(runs):
    r = runs["async"]
    plot = plots.LivePlot(r.config)
    for event in runs["live"]:
        plot.update(event)
    assert any(isinstance(e, CommEvents) for e in runs["live"])  # ignored, not an error
    assert [row["step"] for row in plot.rows] == [row["step"] for row in r.history]
    assert plot.progress is not None and plot.progress.step == r.config.steps
    fig = plot.figure()
    loss_ax, acc_ax = fig.axes
    line = line_of(loss_ax, r.config.label())
    np.testing.assert_array_equal(line.get_xdata(), [row["step"] for row in r.history])
    np.testing.assert_allclose(line.get_ydata(), [row["test_loss"] for row in r.history])
    np.testing.assert_allclose(acc_ax.get_lines()[0].get_ydata(),
                               [row["accuracy"] for row in r.history])
    assert f"step {r.config.steps} of {r.config.steps}" in fig.get_suptitle()


def test_liveplot_throttles_drawing():
    now = [100.0]
    plot = plots.LivePlot(ddlkit.Experiment(), min_interval_s=0.3, clock=lambda: now[0])
    assert not plot.due()  # nothing to show yet
    plot.update(RankReady(rank=0, t=0.1, pid=1))
    assert not plot.due()  # not a plotted event
    plot.update(EvalPoint({"step": 0, "t": 0.2, "test_loss": 2.3, "accuracy": 0.1,
                           "train_loss": None, "samples": 0, "bytes": 0}))
    assert plot.due()
    plot.figure()
    assert not plot.due()
    plot.update(Progress(step=3, total=100, samples=96, t=0.3))
    now[0] += 0.1
    assert not plot.due()
    now[0] += 0.25
    assert plot.due()


# -- pyplot is left alone ------------------------------------------------------------
VIEWS: dict[str, Callable[[dict[str, Any]], Figure]] = {
    "convergence": lambda rs: plots.convergence(all_runs(rs), x="time"),
    "convergence_panel": lambda rs: plots.convergence_panel(all_runs(rs)),
    "communication": lambda rs: plots.communication(rs["async"]),
    "timeline": lambda rs: plots.timeline(rs["async"], max_steps=5),
    "time_breakdown": lambda rs: plots.time_breakdown(all_runs(rs)),
    "staleness": lambda rs: plots.staleness(rs["async"]),
    "staleness_sync": lambda rs: plots.staleness(rs["sync"]),
    "shards_for": lambda rs: plots.shards_for(ddlkit.Experiment(workers=3,
                                                                sharding="label-skew")),
    "comparison": lambda rs: plots.comparison(all_runs(rs)),
    "live": lambda rs: plots.LivePlot(rs["async"].config).figure(),
}


@pytest.mark.parametrize("view", list(VIEWS))
def test_views_leave_no_pyplot_figure_and_render(runs, view):
    before = plt.get_fignums()
    fig = VIEWS[view](runs)
    assert plt.get_fignums() == before
    assert isinstance(fig, Figure)
    render(fig)
    assert plt.get_fignums() == before
